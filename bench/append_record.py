"""Benchmark 2: a node appends N dict records with ``append(record)``, once per record.

As benchmark 1 (same records, same baseline: ``from_pylist`` and one committed insert into
DuckDB, in this process), but the node calls ``append`` in a loop over the records it made.
Making the records is timed in the node and left out of both sides.
"""

from __future__ import annotations

from bench.common import Figure, median, spread, time_appends

GRAPH = """
title: Append records one by one
functions:
  - node_file: append_record.py
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
for row in rows:
    out.append(row)
print("BENCH-REPORT " + json.dumps({"made_s": made}))
"""


def run(small: bool) -> list[Figure]:
    n, reps = (20_000, 3) if small else (1_000_000, 5)
    platform, base, made = time_appends("append_record.py", NODE, GRAPH, n, reps)
    return [Figure(
        "append_record", "append(record) in a loop until committed", n / median(platform),
        n / median(base), "records/s", ">= 0.6", n,
        f"median of {reps} (platform {spread(platform)}, baseline {spread(base)}); baseline: "
        f"from_pylist + insert into DuckDB, same process; making the records "
        f"({median(made):.2f} s in the node) is left out of both")]
