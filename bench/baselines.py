"""The baselines: the same records moved straight between Python and DuckDB through Arrow,
in this process, with nothing of the platform in between."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa

#: Rows per Arrow batch read from DuckDB (the store's readers use the same size).
BATCH_ROWS = 65_536


def insert_records(con: duckdb.DuckDBPyConnection, table: str,
                   records: list[dict[str, Any]]) -> None:
    """``pyarrow.Table.from_pylist`` and one committed insert (creating ``table``)."""
    data = pa.Table.from_pylist(records)
    insert_arrow(con, table, data)


def insert_arrow(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    con.register("__bench_data", data)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM __bench_data LIMIT 0")
        con.execute(f"INSERT INTO {table} SELECT * FROM __bench_data")
        con.execute("COMMIT")
    finally:
        con.unregister("__bench_data")


def read_records(con: duckdb.DuckDBPyConnection, sql: str,
                 params: list[Any] | None = None) -> Iterator[dict[str, Any]]:
    """A query's rows as dicts: Arrow batches from DuckDB, each ``to_pylist``."""
    rel = con.sql(sql, params=params) if params else con.sql(sql)
    reader = rel.to_arrow_reader(BATCH_ROWS)
    for batch in reader:
        yield from batch.to_pylist()
