"""Benchmark 5: a stream run that finds 1 % new rows on a big table costs O(new rows).

The table ``src`` is filled (untimed) and a consumer node consumes all of it once. Then,
each round, 1 % new rows are appended (by a node run) and the consumer's next run, which
finds only those, is timed through ``Engine.run_node`` (trigger → new rows delivered as
dicts → position committed → recorded). Baseline, in this process on the same rows: reading
only the new rows straight from the store's physical table in DuckDB, the fastest way it
offers (the key of the id's block, ``_patterns_id_ms``, greater than the last one read's, so
the row groups before are skipped, and ``patterns_id`` after it, in id order → Arrow batches
→ ``to_pylist``). Reported at two table sizes, and 20,000,000 rows too with ``--large``
(``BENCH_STREAM_ROWS=2000000,1000000`` for others): the cost must follow the new rows, not
the table, so the ratio must stay flat from size to size.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from bench.baselines import read_records
from bench.common import (
    CONSUMER_NODE,
    FILL_NODE,
    Figure,
    bench_engine,
    fill,
    median,
    report,
    run_node,
)

if TYPE_CHECKING:
    from patterns.engine.engine import Engine

GRAPH = """
title: Stream new rows
functions:
  - node_file: fill.py
  - node_file: consume.py
stores:
  - table: src
"""


def _read_new(engine: Engine, after: str) -> int:
    from patterns.store.ids import id_key
    from patterns.store.model import ID_MS
    from patterns.store.reads import select_list
    from patterns.store.tables import q, qualified

    store = engine.store
    meta = store.table("src")
    assert meta is not None
    sql = (f"SELECT {select_list(meta)} FROM {qualified(meta.physical)} "
           f"WHERE {q(ID_MS)} > ? AND {q(meta.physical_id)} > ? "
           f"ORDER BY {q(meta.physical_id)}")
    n = 0
    with store.cursor() as cur:
        for _record in read_records(cur, sql, [id_key(after), after]):
            n += 1
    return n


def _figure(size: int, reps: int) -> Figure:
    new = size // 100
    platform, base = [], []
    with bench_engine({"fill.py": FILL_NODE, "consume.py": CONSUMER_NODE}, GRAPH) as engine:
        consumer = engine.app.node("consume.py")
        fill(engine, 0, size)
        run_node(engine, consumer)  # consumes the whole table: from here on, only new rows
        for k in range(reps):
            meta = engine.store.table("src")
            assert meta is not None and meta.last_id is not None
            last = meta.last_id
            fill(engine, size + k * new, new)
            start = time.perf_counter()
            rows = _read_new(engine, last)
            base.append(time.perf_counter() - start)
            assert rows == new, (rows, new)
            seconds, run_id = run_node(engine, consumer)
            assert report(engine, run_id)["rows"] == new
            platform.append(seconds)
    return Figure(
        "stream_new_rows", f"stream run finding 1% new rows in {size:,} rows",
        median(platform) * 1000, median(base) * 1000, "ms", "<= 1.5", size,
        f"{new:,} new rows; median of {reps}; the run, trigger to recorded; baseline: the new "
        f"rows straight from the store's DuckDB table (id's key > last's, id > last id) -> "
        f"Arrow -> to_pylist")


def run(small: bool) -> list[Figure]:
    sizes = (100_000, 20_000) if small else (5_000_000, 1_000_000)
    if os.environ.get("BENCH_LARGE") and not small:
        sizes = (20_000_000, *sizes)
    if os.environ.get("BENCH_STREAM_ROWS"):
        sizes = tuple(int(n) for n in os.environ["BENCH_STREAM_ROWS"].split(","))
    return [_figure(size, 3) for size in sizes]
