"""A warm worker's spare copies the pages runs write before its run (patterns.sdk._prefault):
what a run reports is what it wrote, copying changes no byte, and no report can make a spare
fail or copy without bound."""

from __future__ import annotations

import ctypes
import functools
import json
import mmap
import os
import struct
import subprocess
import sys
from collections.abc import Callable

import numpy as np

from patterns.sdk._prefault import (
    MAX_PAGES,
    PAGE,
    PageLog,
    PageWatch,
    common,
    populate,
)

FRESH = "PATTERNS_TEST_FRESH_PROCESS"


def forks(test: Callable[[], None]) -> Callable[[], None]:
    """Run ``test`` in a process of its own when this one has other threads (pytest-xdist's,
    or an earlier test's gRPC and DuckDB threads): a fork there runs those libraries'
    fork handlers, which crashed the child (SIGSEGV inside ``os.fork``) in a full run. A
    warm worker forks its spares from a process with one thread, as the fresh one is."""

    @functools.wraps(test)
    def wrapper() -> None:
        if os.environ.get(FRESH) == "1" or len(os.listdir("/proc/self/task")) == 1:
            test()
            return
        result = subprocess.run(
            [sys.executable, "-m", "pytest", f"{__file__}::{test.__name__}", "-q",
             "-p", "no:xdist", "-p", "no:cacheprovider"],
            capture_output=True, text=True, env={**os.environ, FRESH: "1"}, timeout=120)
        assert result.returncode == 0 and "1 passed" in result.stdout, \
            result.stdout + result.stderr

    return wrapper


def in_child(work: Callable[[], bytes]) -> bytes:
    """``work``'s answer, computed in a forked child (as a spare is)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.write(w, work())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return b"".join(chunks)


def owned(address: int, pages: int) -> bool:
    """Whether each of those pages is mapped by this process alone (pagemap bit 56)."""
    with open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
        raw = os.pread(pagemap.fileno(), pages * 8, address // PAGE * 8)
    return all(entry >> 56 & 1 for entry in np.frombuffer(raw, dtype=np.uint64).tolist())


def shared_buffer(pages: int) -> tuple[bytearray, int]:
    """A page-aligned region of the heap, written (so present) before any fork."""
    buffer = bytearray(os.urandom((pages + 1) * PAGE))
    start = ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))
    return buffer, -(-start // PAGE) * PAGE


@forks
def test_a_run_reports_the_pages_it_wrote_not_those_it_read_or_its_spare_wrote() -> None:
    buffer, start = shared_buffer(8)
    base = start - ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))

    def work() -> bytes:
        buffer[base + 1 * PAGE] ^= 0xFF  # written while the spare waits
        watch = PageWatch()
        buffer[base + 2 * PAGE] ^= 0xFF  # written by the run: copied
        _ = bytes(buffer[base + 5 * PAGE: base + 6 * PAGE])  # read only: still shared
        pages = {a + i * PAGE for a, n in watch.written() for i in range(n)}
        return bytes([start + 2 * PAGE in pages, start + 5 * PAGE in pages,
                      start + PAGE in pages])

    assert in_child(work) == b"\x01\x00\x00"


@forks
def test_a_report_holds_what_the_run_wrote_not_what_reporting_it_wrote() -> None:
    """Every page in a report is copied by every later spare: the report must not hold the
    pages its own making wrote (reading the pagemap into fresh buffers wrote ~240 of them
    before the reads, in a warm worker's run)."""
    buffer, start = shared_buffer(64)
    base = start - ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))

    def work() -> bytes:
        watch = PageWatch()
        for page in range(0, 64, 2):  # a run that writes 32 pages
            buffer[base + page * PAGE] ^= 0xFF
        pages = {a + i * PAGE for a, n in watch.written() for i in range(n)}
        ours = {start + page * PAGE for page in range(0, 64, 2)}
        return json.dumps([len(ours - pages), len(pages - ours)]).encode()

    missed, others = json.loads(in_child(work))
    assert missed == 0
    # (Python's own bookkeeping around the run's lines writes a few dozen at most; reading
    # into fresh buffers, as the first version did, added 160 or so here)
    assert others <= 48, f"{others} pages reported that the run did not write"


@forks
def test_a_spare_copies_the_reported_pages_and_changes_no_byte() -> None:
    buffer, start = shared_buffer(16)
    before = bytes(buffer)

    def work() -> bytes:
        assert not owned(start, 16)
        populate([(start, 4), (start + 8 * PAGE, 8)])
        return bytes([owned(start, 4), owned(start + 4 * PAGE, 1), owned(start + 8 * PAGE, 8),
                      bytes(buffer) == before])

    assert in_child(work) == b"\x01\x00\x01\x01"
    assert bytes(buffer) == before  # (and the worker's own copy is untouched)


def test_pages_not_mapped_or_not_writable_are_skipped() -> None:
    readonly = mmap.mmap(-1, 4 * PAGE, prot=mmap.PROT_READ)
    address = _address(readonly)
    buffer, start = shared_buffer(2)
    before = bytes(buffer)
    populate([(1 << 46, 16), (address, 4), (start, 2)])  # unmapped, read-only, writable
    assert readonly[:] == bytes(4 * PAGE)
    assert bytes(buffer) == before and owned(start, 2)
    readonly.close()


def _address(m: mmap.mmap) -> int:
    """Where a mapping starts (from /proc/self/maps: a read-only one gives no buffer)."""
    size = len(m)
    with open("/proc/self/maps") as maps:
        for line in maps:
            low, high = (int(x, 16) for x in line.split()[0].split("-"))
            if line.split()[1].startswith("r--p") and high - low == size:
                return low
    raise AssertionError("the mapping is not in /proc/self/maps")


@forks
def test_a_report_travels_from_the_run_to_the_worker_through_the_fork() -> None:
    log = PageLog()
    buffer, start = shared_buffer(4)
    base = start - ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))

    def work() -> bytes:
        watch = PageWatch()
        buffer[base + PAGE] ^= 1
        log.write(watch.written())
        return b""

    in_child(work)
    reported = {a + i * PAGE for a, n in log.read() for i in range(n)}
    assert start + PAGE in reported
    log.close()


def test_a_spoiled_report_is_checked_and_bounded() -> None:
    log = PageLog()
    log.map[:4] = struct.pack("<I", 0xFFFFFFFF)  # a count far past the mapping
    log.map[4:16] = struct.pack("<QI", 3 * PAGE, 1 << 30)  # a run larger than the bound
    assert log.read() == []
    log.map[4:28] = struct.pack("<QI", 5 * PAGE, 2) + struct.pack("<QI", 7 * PAGE + 1, 1)
    assert log.read() == [(5 * PAGE, 2)]  # stops at the first unaligned address
    runs = [(i * 4 * PAGE, 3) for i in range(1, 4000)]
    log.write(runs)
    assert sum(n for _, n in log.read()) <= MAX_PAGES
    log.map[:] = os.urandom(len(log.map))  # anything a node could write there
    assert sum(n for _, n in log.read()) <= MAX_PAGES
    assert all(a % PAGE == 0 and n > 0 for a, n in log.read())
    log.close()


def test_spares_copy_only_the_pages_both_of_the_last_two_runs_wrote() -> None:
    one = [(10 * PAGE, 4), (40 * PAGE, 1)]  # pages 10-13 and 40
    other = [(12 * PAGE, 4), (40 * PAGE, 2)]  # pages 12-15, 40 and 41
    assert common(one, other) == [(12 * PAGE, 2), (40 * PAGE, 1)]
    assert common(one, []) == []
