"""``python -m bench --store STORE``: which store the engine benchmarks run on.

``duckdb`` (the default) is each benchmark's own throwaway DuckDB file. A PostgreSQL URL
(``postgresql://USER@HOST:PORT/DB``, a user who may create databases) gives each benchmark a
new database of that server; ``postgresql-temp`` first starts a throwaway server
(:mod:`patterns.store.pg_server`, from the binaries ``scripts/install-postgres`` installs)
and stops it at the end. The engine of each benchmark opens ``PATTERNS_STORE``; the
``pg_store`` benchmark uses the same server (``PATTERNS_BENCH_POSTGRES``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: The benchmarks that measure the store through the engine and run on either backend (the
#: others read DuckDB's own tables or measure what does not depend on the store).
ON_POSTGRES = ["append_list", "append_record", "consume", "copy", "pg_store"]
TEMP = "postgresql-temp"


def backend(spec: str) -> str:
    return "duckdb" if spec == "duckdb" else "postgresql"


def valid(spec: str) -> bool:
    return spec in ("duckdb", TEMP) or spec.startswith(("postgresql://", "postgres://"))


@contextmanager
def store_for_each(spec: str) -> Iterator[Any]:
    """A function that sets the environment for the next benchmark (a new database of the
    server), or does nothing for DuckDB."""
    if spec == "duckdb":
        yield lambda name: None
        return
    server = None
    if spec == TEMP:
        from patterns.store import pg_server

        server = pg_server.start()
    url = server.url if server is not None else spec
    saved = {k: os.environ.get(k) for k in ("PATTERNS_STORE", "PATTERNS_BENCH_POSTGRES")}

    def fresh(name: str) -> None:
        os.environ["PATTERNS_STORE"] = _database(url, name)
        os.environ["PATTERNS_BENCH_POSTGRES"] = url

    try:
        yield fresh
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if server is not None:
            server.stop()


def _database(server_url: str, bench: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = f"bench_{bench}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def stored_rows(store: Any, table: str) -> int:
    """How many rows ``table`` has, on any store."""
    with store.read() as view:
        meta = view.tables.get(table)
        return int(view.tables.count(meta)) if meta is not None else 0
