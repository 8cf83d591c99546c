"""Reading a table of an outside database (a storage of the app), whole, as Arrow.

The only place that talks to outside databases: PostgreSQL through psycopg (in a read-only
session), SQLite through Python's ``sqlite3`` and DuckDB files through duckdb (both opened
read-only). No DuckDB extension is loaded or downloaded. Which database and table to read
is resolved by :mod:`patterns.engine.storages`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from patterns.errors import ConfigError, NodeError

if TYPE_CHECKING:
    import pyarrow as pa

Kind = Literal["postgres", "duckdb", "sqlite"]


def read_outside(kind: Kind, target: str, table: str, *, store: str, storage: str
                 ) -> pa.Table:
    """Every row of ``table`` in the database at ``target`` (a PostgreSQL URL or a file's
    path), as Arrow; NodeError naming ``store`` and ``storage`` when it cannot be read."""
    sql = f"SELECT * FROM {quoted(table)}"
    try:
        if kind == "duckdb":
            import duckdb

            with duckdb.connect(target, read_only=True) as con:
                return con.sql(sql).to_arrow_table()
        if kind == "sqlite":
            uri = Path(target).as_uri() + "?mode=ro"
            with closing(sqlite3.connect(uri, uri=True)) as con:
                cur = con.execute(sql)
                return _arrow(cur.fetchall(), [d[0] for d in cur.description])
        return _postgres(target, sql)
    except ConfigError:
        raise
    except Exception as exc:  # the outside database's own error, whatever its driver
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NodeError(f"table {store!r} cannot be read from storage '{storage}' "
                        f"({kind} table {table!r}): {reason}") from None


def select(data: pa.Table, where: str, params: Sequence[Any], order: str) -> pa.Table:
    """The rows of ``data`` (as ``outside``) that ``where`` keeps, in ``order`` (a stream
    over an outside table)."""
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
    import pyarrow as pa

    columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    return pa.table({name: pa.array(values) for name, values in columns.items()})


def quoted(table: str) -> str:
    """``schema.table`` as a quoted SQL name (the same in PostgreSQL, DuckDB and SQLite)."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))
