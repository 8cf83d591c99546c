"""Converting a long list on both cores with a forked child: a measurement, not a benchmark.

``python -m bench.fork_convert [N] [ROUNDS] [MODES]`` (modes such as ``now,fork``; all by
default) makes ``N`` benchmark records (1,000,000) in this process, as a node makes them,
and converts them to Arrow in three ways, alternated, ``ROUNDS`` times (3):

- ``now``: what ``append(list)`` does today, :func:`patterns.sdk._convert.records_to_arrow`
  (10,000 records at a time, column by column).
- ``fork``: the design of bench/RESULTS.md's "target 1, fifth pass": the process forks; the
  child (garbage collector off) converts the second half with the same per-slice code and
  writes each part as an Arrow IPC stream into a memfd, then ``os._exit``; the parent (its
  collector paused too) converts the first half, waits for the child and maps the memfd.
  The child sees the dicts copy-on-write, but reading them in Python increments their
  reference counts (and the values'), so each side's first write to a page of the records
  copies it.
- ``gathered``: the columns (one list per field per slice) gathered before the fork, so the
  reference counts are written before it; the two processes then only run ``pyarrow.array``
  over them.

Each line prints the wall time and, for the parent (``self``) and the child, user and system
CPU and minor page faults (``getrusage``). Every result is checked equal to ``now``'s. Run
it beside nothing else to see what a free core gives, and beside a busy loop to see the
load's effect. bench/RESULTS.md, "target 1, fifth pass", has the figures.
"""

from __future__ import annotations

import gc
import json
import mmap
import operator
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")  # (as in a node process)

SLICE = 10_000


def usage(who: int) -> tuple[float, float, int]:
    used = resource.getrusage(who)
    return used.ru_utime, used.ru_stime, used.ru_minflt


def send(fd: int, parts: list[Any]) -> None:
    import pyarrow as pa

    with open(fd, "wb", closefd=False) as file, \
            pa.ipc.new_stream(pa.PythonFile(file, mode="w"), parts[0].schema) as stream:
        for part in parts:
            stream.write_table(part)


def receive(fd: int) -> Any:
    import pyarrow as pa

    size = os.fstat(fd).st_size
    return pa.ipc.open_stream(pa.py_buffer(mmap.mmap(fd, size, prot=mmap.PROT_READ))).read_all()


def in_two(n: int, head: Callable[[], list[Any]], tail: Callable[[], list[Any]]
           ) -> tuple[Any, dict[str, float]]:
    """``tail`` in a forked child, ``head`` here; the parts in order, and the figures."""
    import pyarrow as pa

    fd = os.memfd_create("bench-part", os.MFD_CLOEXEC)
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            gc.disable()
            send(fd, tail())
            code = 0
        finally:
            os._exit(code)
    forked = time.perf_counter() - start
    mine = head()
    converted = time.perf_counter() - start
    _, status, child = os.wait4(pid, 0)
    if status:
        raise RuntimeError(f"the child failed: status {status}")
    waited = time.perf_counter() - start
    table = pa.concat_tables([*mine, receive(fd)])
    os.close(fd)
    return table, {"fork_s": forked, "head_s": converted, "child_done_s": waited,
                   "child_user": child.ru_utime, "child_sys": child.ru_stime,
                   "child_faults": child.ru_minflt}


def convert(mode: str, records: list[dict[str, Any]]) -> tuple[Any, dict[str, float]]:
    import pyarrow as pa

    from patterns.sdk._convert import _converted, records_to_arrow

    n = len(records)
    k = n // 2 // SLICE * SLICE
    if mode == "now":
        return records_to_arrow(records, "t"), {}
    if mode == "fork":
        def part(lo: int, hi: int) -> list[Any]:
            return [_converted(records[at:min(at + SLICE, hi)], "t")[0]
                    for at in range(lo, hi, SLICE)]
        return in_two(n, lambda: part(0, k), lambda: part(k, n))
    names = list(records[0])
    start = time.perf_counter()
    columns = [[list(map(operator.itemgetter(name), records[at:at + SLICE])) for name in names]
               for at in range(0, n, SLICE)]
    gathered = time.perf_counter() - start

    def tables(lo: int, hi: int) -> list[Any]:
        return [pa.Table.from_arrays([pa.array(c) for c in cols], names=names)
                for cols in columns[lo // SLICE:hi // SLICE]]
    table, figures = in_two(n, lambda: tables(0, k), lambda: tables(k, n))
    return table, {"gathered_s": gathered, **figures}


def main(argv: list[str]) -> None:
    from bench.records import record_list
    from patterns.sdk._convert import records_to_arrow

    n = int(argv[0]) if argv else 1_000_000
    rounds = int(argv[1]) if len(argv) > 1 else 3
    modes = argv[2].split(",") if len(argv) > 2 else ["now", "fork", "gathered"]
    gc.set_threshold(10_000, 10, 10)  # (a node's, patterns/sdk/_runner.py)
    records = record_list(0, n)
    expected = records_to_arrow(records, "t").combine_chunks()
    for _ in range(rounds):
        for mode in modes:
            gc.disable()  # (both sides pause it: a full collection would touch every page)
            before = usage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            table, figures = convert(mode, records)
            wall = time.perf_counter() - start
            after = usage(resource.RUSAGE_SELF)
            gc.enable()
            if not table.combine_chunks().equals(expected):
                raise AssertionError(f"{mode}: not the table converting at once makes")
            del table
            line = {"mode": mode, "load": round(os.getloadavg()[0], 2), "wall_s": wall,
                    "self_user": after[0] - before[0], "self_sys": after[1] - before[1],
                    "self_faults": after[2] - before[2], **figures}
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                              for k, v in line.items()}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
