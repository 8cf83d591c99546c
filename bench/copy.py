"""Benchmark 9: a node copies N rows from one table into another, record by record.

The table ``src`` is filled first (``benchrecords``, untimed). Each timed run is a fresh
copier node writing its own ``dst_<k>``: ``for r in stream.consume_records():
out.append(r)``, through ``Engine.run_node`` (trigger → copied → committed → recorded).
Baseline, in this process on the same records held in a DuckDB file of its own, the same
job by hand: read 10,000-row batches in id order as dicts (one ordered query, read 10,000
rows at a time), append each to a list, and write the batch and the last id read in one
transaction.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from bench.common import (
    FILL_NODE,
    Figure,
    bench_engine,
    filled_source,
    median,
    run_node,
    timed,
)
from bench.stores import stored_rows

COPIER = """
from patterns import Table

out = Table("dst___K__", "w")
for record in Table("src").as_stream().consume_records():
    out.append(record)
"""
BATCH = 10_000


def _graph(reps: int) -> str:
    nodes = "".join(f"  - node_file: copy_{k}.py\n" for k in range(reps))
    tables = "".join(f"  - table: dst_{k}\n" for k in range(reps))
    return (f"title: Copy\nfunctions:\n  - node_file: fill.py\n{nodes}"
            f"stores:\n  - table: src\n{tables}")


def _copy_by_hand(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE OR REPLACE TABLE dst AS SELECT * FROM src LIMIT 0")
    con.execute("CREATE OR REPLACE TABLE position (last_id BIGINT)")
    con.execute("INSERT INTO position VALUES (-1)")
    reader = con.cursor()  # one ordered read, 10,000 rows at a time, beside the writes
    for read in reader.sql("SELECT * FROM src ORDER BY id").to_arrow_reader(BATCH):
        batch = []
        for record in read.to_pylist():
            batch.append(record)
        con.register("batch_data", pa.Table.from_pylist(batch))
        con.execute("BEGIN TRANSACTION")
        con.execute("INSERT INTO dst SELECT * FROM batch_data")
        con.execute("UPDATE position SET last_id = ?", [batch[-1]["id"]])
        con.execute("COMMIT")
        con.unregister("batch_data")
    reader.close()


def run(small: bool) -> list[Figure]:
    n, reps = (20_000, 3) if small else (1_000_000, 3)
    nodes = {"fill.py": FILL_NODE,
             **{f"copy_{k}.py": COPIER.replace("__K__", str(k)) for k in range(reps)}}
    platform, base = [], []
    with bench_engine(nodes, _graph(reps)) as engine:
        con = filled_source(engine, n)
        for k in range(reps):
            base.append(timed(lambda: _copy_by_hand(con)))
            assert con.execute("SELECT count(*) FROM dst").fetchall()[0][0] == n
            seconds, _ = run_node(engine, engine.app.node(f"copy_{k}.py"))
            assert stored_rows(engine.store, f"dst_{k}") == n
            platform.append(seconds)
        con.close()
    return [Figure(
        "copy", "copy a table record by record", n / median(platform), n / median(base),
        "records/s", ">= 0.9", n,
        f"median of {reps}; the run, trigger to recorded; baseline by hand, same process: "
        f"{BATCH:,}-row batches in id order as dicts, each batch and its last id written in "
        f"one transaction")]
