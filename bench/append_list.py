"""Benchmark 1: a node appends N dict records with one ``append(list)``, until committed.

The node makes the records (``benchrecords``, 8 fields, one a nested dict), then appends
them in one call; the run goes through ``Engine.run_node`` (warm worker fork, data plane,
commit, run record). The node times its own making of the records, which is left out of
both sides: the platform's time is the run's, trigger to recorded, less that. Baseline, in
this process on the same records: ``pyarrow.Table.from_pylist`` and one committed insert
into a DuckDB file of its own.
"""

from __future__ import annotations

from bench.common import Figure, median, spread, time_appends

GRAPH = """
title: Append a list
functions:
  - node_file: append_list.py
stores:
  - table: out
"""
NODE = """
import json
import time

from patterns import Table

from benchrecords import record_list

out = Table("out", "w")
start = time.perf_counter()
rows = record_list(0, __N__)
made = time.perf_counter() - start
out.append(rows)
print("BENCH-REPORT " + json.dumps({"made_s": made}))
"""


def run(small: bool) -> list[Figure]:
    n, reps = (20_000, 3) if small else (1_000_000, 5)
    platform, base, made = time_appends("append_list.py", NODE, GRAPH, n, reps)
    return [Figure(
        "append_list", "append(list) until committed", n / median(platform), n / median(base),
        "records/s", ">= 0.8", n,
        f"median of {reps} (platform {spread(platform)}, baseline {spread(base)}); baseline: "
        f"from_pylist + insert into DuckDB, same process; making the records "
        f"({median(made):.2f} s in the node) is left out of both")]
