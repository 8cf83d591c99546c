"""Pages a warm worker's run will write, copied by its spare before the run starts.

A run's process is a fork of the warm worker (:mod:`patterns.sdk._zygote`), which holds
~125 MB of imports. Each page of them the run writes is copied when it first writes it (a
copy-on-write fault): Python 3.11 writes reference counts into every object it touches, so
even a trivial run copied ~1,100 pages on its critical path, about half of its CPU there
being the kernel's (bench/RESULTS.md, issue 15 target 4). Runs of one worker touch much the
same pages: the same runtime, the same conversions, the same channel.

So a run now and then reports which of the worker's pages it came to own (from
``/proc/self/pagemap``: the pages of its private writable mappings mapped only by itself,
at its end less those its spare owned when the run was handed over; :class:`PageWatch`),
into a small shared mapping the worker made for it (:class:`PageLog`). The worker keeps the pages both of the
last two reports hold (:func:`common`), and each later spare asks the kernel to copy them
(``madvise(MADV_POPULATE_WRITE)``, one call per run of pages, no data changed) while it
waits for its run. Everything here is an optimisation: any failure (an old kernel, no
``/proc``, a report spoiled by node code) leaves a run as it was, faulting its pages in.
The report holds page addresses only, checked and capped by the worker: node code that
writes it can only make later spares copy a few more of their own pages.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
import struct
from typing import Any

PAGE = mmap.PAGESIZE
MADV_POPULATE_WRITE = 23  # (Linux 5.14)
#: The most pages a spare copies ahead (16 MB): a bound on what a report can cost.
MAX_PAGES = 4096
#: The most runs of pages a report holds.
MAX_RANGES = 4096
_HEADER = struct.Struct("<I")
_RANGE = struct.Struct("<QI")
LOG_SIZE = _HEADER.size + MAX_RANGES * _RANGE.size
_PRESENT, _EXCLUSIVE = 1 << 63, 1 << 56

Ranges = list[tuple[int, int]]  # (address, pages)


class PageLog:
    """A small shared mapping, made by the worker before it forks a spare that will report:
    its run writes the report in it, the worker reads it once that process has ended."""

    def __init__(self) -> None:
        self.map = mmap.mmap(-1, LOG_SIZE)  # (anonymous and shared: survives the fork)

    def write(self, ranges: Ranges) -> None:
        ranges = ranges[:MAX_RANGES]
        self.map[_HEADER.size:_HEADER.size + len(ranges) * _RANGE.size] = b"".join(
            _RANGE.pack(start, pages) for start, pages in ranges)
        self.map[:_HEADER.size] = _HEADER.pack(len(ranges))  # (last: a count of what is there)

    def read(self) -> Ranges:
        """The report, checked: page-aligned runs, at most :data:`MAX_PAGES` pages."""
        (count,) = _HEADER.unpack_from(self.map)
        ranges: Ranges = []
        total = 0
        for i in range(min(count, MAX_RANGES)):
            start, pages = _RANGE.unpack_from(self.map, _HEADER.size + i * _RANGE.size)
            if start % PAGE or pages <= 0 or total + pages > MAX_PAGES:
                break
            ranges.append((start, pages))
            total += pages
        return ranges

    def close(self) -> None:
        self.map.close()


class PageWatch:
    """What this process comes to own from now on: made by a spare before its run, asked
    by the run at its end (:meth:`written`).

    The areas to look at (its private writable mappings) and a buffer for their pagemap
    entries are found and written now, so that at the end the entries are read straight
    into that buffer: no page is written between the run's last line and the reading but
    the few a call writes. (Reading with fresh buffers, as this first did, wrote ~240 pages
    of their own before the reads, and every later spare copied them too.)"""

    def __init__(self) -> None:
        import numpy as np

        self.areas: list[tuple[int, int, int]] = []  # (first page, count, buffer offset)
        self.entries: Any = np.zeros(0, dtype=np.uint64)
        self.before: Any = np.zeros(0, dtype=np.int64)
        try:
            with open("/proc/self/maps") as maps:
                lines = [line.split() for line in maps]
            offset = 0
            for area in lines:
                if len(area) < 5 or area[1][:2] != "rw" or area[1][3] != "p":
                    continue
                low, high = (int(x, 16) for x in area[0].split("-"))
                self.areas.append((low // PAGE, (high - low) // PAGE, offset))
                offset += (high - low) // PAGE
            self.entries = np.zeros(offset, dtype=np.uint64)  # (written: its pages are ours)
            raw = memoryview(self.entries).cast("B")
            self.reads = [(first * 8, raw[at * 8:(at + count) * 8])
                          for first, count, at in self.areas]
            self.pagemap = open("/proc/self/pagemap", "rb", buffering=0)  # noqa: SIM115
            # Twice: the pages the first one's arrays were put in are then owned before the
            # second reads, as they will be when the run's end reads.
            self._owned()
            self.before = self._owned()
        except (OSError, ValueError):
            self.areas = []

    def _owned(self) -> Any:
        """The pages (numbers: address // PAGE, sorted) of those areas this process alone
        maps, copied or first written since the fork; empty if the kernel does not say."""
        import numpy as np

        fd = self.pagemap.fileno()
        for offset, view in self.reads:  # (nothing allocated until every entry is read)
            os.preadv(fd, [view], offset)
        mine = (self.entries & np.uint64(_PRESENT | _EXCLUSIVE)) \
            == np.uint64(_PRESENT | _EXCLUSIVE)
        found = np.flatnonzero(mine)
        pages = np.empty(len(found), dtype=np.int64)
        for first, count, at in self.areas:
            low, high = np.searchsorted(found, (at, at + count))
            pages[low:high] = found[low:high] - at + first
        return pages

    def written(self) -> Ranges:
        """The pages this process has come to own since the watch was made, as runs of
        pages (what a run wrote, not what its spare did while waiting)."""
        import numpy as np

        if not self.areas:
            return []
        try:
            pages = np.setdiff1d(self._owned(), self.before, assume_unique=True)
        except (OSError, ValueError):
            return []
        finally:
            self.pagemap.close()  # (asked once, at the run's end: no descriptor left to it)
        if not len(pages):
            return []
        breaks = np.flatnonzero(np.diff(pages) != 1) + 1
        starts = np.concatenate(([0], breaks))
        ends = np.concatenate((breaks, [len(pages)]))
        return [(int(pages[a]) * PAGE, int(b - a)) for a, b in zip(starts, ends, strict=True)]


def common(one: Ranges, other: Ranges) -> Ranges:
    """The pages in both reports, as runs of pages: what runs write every time (a run's
    thread stacks and newest allocations land elsewhere each time; copying those ahead
    would only add to what the run copies itself)."""
    pages = sorted({a + i * PAGE for a, n in one for i in range(n)}
                   & {a + i * PAGE for a, n in other for i in range(n)})
    ranges: Ranges = []
    for page in pages:
        if ranges and ranges[-1][0] + ranges[-1][1] * PAGE == page:
            ranges[-1] = (ranges[-1][0], ranges[-1][1] + 1)
        else:
            ranges.append((page, 1))
    return ranges


def populate(ranges: Ranges) -> None:
    """Copy those pages into this process now (each run of them that is still mapped
    writable here; the rest is skipped)."""
    madvise = _libc().madvise
    for start, pages in ranges:  # (a failed call sets errno, and nothing else)
        madvise(start, pages * PAGE, MADV_POPULATE_WRITE)


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc
