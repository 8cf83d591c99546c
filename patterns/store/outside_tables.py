"""Reading tables of outside databases (a graph's ``storages:``): PostgreSQL, DuckDB and
SQLite files, read-only, each table fetched whole as Arrow (see patterns.engine.storages).
The database drivers live under patterns/store/ only (the import rules)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from patterns.errors import ConfigError


def fetch(kind: str, target: str, quoted_table: str) -> pa.Table:
    """Every row of the table (a quoted SQL name) in the ``kind`` database at ``target``;
    the driver's own error when it cannot be read."""
    sql = f"SELECT * FROM {quoted_table}"
    if kind == "duckdb":
        import duckdb

        with duckdb.connect(target, read_only=True) as con:
            return con.sql(sql).to_arrow_table()
    if kind == "sqlite":
        uri = Path(target).as_uri() + "?mode=ro"
        with sqlite3.connect(uri, uri=True) as con:
            cur = con.execute(sql)
            return _arrow(cur.fetchall(), [d[0] for d in cur.description])
    return _postgres(target, sql)


def select(data: pa.Table, where: str, params: Sequence[Any], order: str) -> pa.Table:
    """The rows of ``data`` (as ``outside``) that ``where`` keeps, in ``order``."""
    import duckdb

    with duckdb.connect() as con:
        con.register("outside", data)
        return con.sql(f"SELECT * FROM outside {where} {order}",
                       params=list(params)).to_arrow_table()


def _postgres(url: str, sql: str) -> pa.Table:
    try:
        import psycopg
    except ImportError:
        raise ConfigError("reading a PostgreSQL storage needs psycopg: pip install "
                          "'patterns[postgres]'") from None
    with psycopg.connect(url, connect_timeout=10) as con:
        con.read_only = True
        with con.cursor() as cur:
            cur.execute(sql.encode())
            names = [d.name for d in cur.description or ()]
            return _arrow(cur.fetchall(), names)


def _arrow(rows: list[Any], names: list[str]) -> pa.Table:
    columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    return pa.table({name: pa.array(values) for name, values in columns.items()})
