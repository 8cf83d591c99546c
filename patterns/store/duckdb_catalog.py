"""What DuckDB itself knows about SQL, for the engine's checks of node SQL: its function
lists and its parser's messages. (Asked of an in-memory database, never of a store.)"""

from __future__ import annotations

import functools


@functools.cache
def table_only_functions() -> frozenset[str]:
    """DuckDB's functions that exist only as table functions (``duckdb_tables``,
    ``read_text``, ``query``...), lower case."""
    import duckdb

    with duckdb.connect(":memory:") as con:
        rows = con.execute(
            "select function_name from duckdb_functions() group by function_name having "
            "bool_and(function_type in ('table', 'table_macro', 'pragma'))").fetchall()
    return frozenset(str(name).lower() for (name,) in rows)


@functools.cache
def builtin_functions() -> frozenset[str]:
    """DuckDB's built-in scalar, aggregate and window functions and macros, lower case."""
    import duckdb

    with duckdb.connect(":memory:") as con:
        rows = con.execute(
            "select distinct function_name from duckdb_functions() where function_type in "
            "('scalar', 'aggregate', 'window', 'macro')").fetchall()
    return frozenset(str(name).lower() for (name,) in rows)


def syntax_error(text: str) -> str | None:
    """DuckDB's parser's message for ``text``, or None when it parses."""
    import duckdb

    with duckdb.connect(":memory:") as con:
        try:
            con.extract_statements(text)
        except duckdb.Error as exc:
            return str(exc)
    return None


def warm_up() -> None:
    """DuckDB imports pandas the first time it takes Arrow data: do it now, on this thread,
    so that two threads never do it at once."""
    import datetime as dt

    import duckdb
    import pyarrow as pa

    with duckdb.connect() as con:
        con.register("warm", pa.table({"n": [1]}))
        con.execute("SELECT ?::TIMESTAMPTZ, ?", [dt.datetime.now(dt.UTC), "x"]).fetchall()
