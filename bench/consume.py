"""Benchmark 3: a node consumes N rows with ``for r in stream.consume_records()``.

The table ``src`` is filled first (records of ``benchrecords``, untimed). Each timed run
is a fresh consumer node (its stream starts at the beginning), run through
``Engine.run_node``: trigger → every row delivered as a dict → position committed →
recorded. Baseline, in this process on the same records held in a DuckDB file of its own:
a DuckDB query in id order → Arrow batches → ``to_pylist``, iterated.
"""

from __future__ import annotations

import duckdb

from bench.baselines import read_records
from bench.common import (
    CONSUMER_NODE,
    FILL_NODE,
    Figure,
    bench_engine,
    filled_source,
    median,
    report,
    run_node,
    timed,
)


def _graph(reps: int) -> str:
    nodes = "".join(f"  - node_file: consume_{k}.py\n" for k in range(reps))
    return f"title: Consume\nfunctions:\n  - node_file: fill.py\n{nodes}stores:\n  - table: src\n"


def _iterate(con: duckdb.DuckDBPyConnection) -> int:
    n = 0
    for _record in read_records(con, "SELECT * FROM src ORDER BY id"):
        n += 1
    return n


def run(small: bool) -> list[Figure]:
    # (5 runs of each, alternating, and their medians: with 3, two quiet runs of the same
    # commit gave 1.48 and 1.62)
    n, reps = (20_000, 3) if small else (1_000_000, 5)
    nodes = {"fill.py": FILL_NODE, **{f"consume_{k}.py": CONSUMER_NODE for k in range(reps)}}
    platform, base = [], []
    with bench_engine(nodes, _graph(reps)) as engine:
        con = filled_source(engine, n)
        for k in range(reps):
            base.append(timed(lambda: _iterate(con)))
            seconds, run_id = run_node(engine, engine.app.node(f"consume_{k}.py"))
            assert report(engine, run_id)["rows"] == n
            platform.append(seconds)
        con.close()
    return [Figure(
        "consume", "consume_records() over a table", n / median(platform), n / median(base),
        "records/s", ">= 1.5", n,
        f"median of {reps}; the run, trigger to recorded; baseline: DuckDB query -> Arrow "
        f"batches -> to_pylist, same process")]
