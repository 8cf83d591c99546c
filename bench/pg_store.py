"""Benchmark 11: the PostgreSQL store against hand-written psycopg, on the same records.

- **append**: one checkpoint appending N records (an Arrow table of ``benchrecords``, the
  nested ``address`` as JSON) through ``PostgresStore.commit`` — conform, ids, ``COPY`` —
  until committed. Baseline: psycopg's binary ``COPY`` of the same records from the same
  Arrow table (``to_pylist``, the nested value as JSON text, ``write_row``) into a table of
  the same column types, committed.
- **consume**: a stream pass over the N rows through a read view of the store, each batch
  made into dicts with the JSON field parsed (what the SDK's ``consume_records`` does).
  Baseline: a server-side (named) cursor over the same rows into dicts (psycopg parses the
  ``jsonb``), fetching as many rows per round trip as the store's batches.

The store is ``--store``'s URL (``PATTERNS_BENCH_POSTGRES``), else a throwaway server
started here (:mod:`patterns.store.pg_server`); each run uses a new database.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from bench.common import Figure, median, timed
from bench.records import arrow_table

_TYPES = ["int8", "text", "text", "float8", "bool", "text", "int8", "jsonb"]
_DDL = ("(id BIGINT, name TEXT, email TEXT, score DOUBLE PRECISION, active BOOLEAN, "
        "country TEXT, visits BIGINT, address JSONB)")


def _database(server_url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def _copy_baseline(url: str, table: str, data: Any) -> None:
    import psycopg

    with psycopg.connect(url) as con, con.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} {_DDL}")  # type: ignore[arg-type]
        with cur.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:  # type: ignore[arg-type]
            copy.set_types(_TYPES)
            for record in data.to_pylist():
                record["address"] = json.dumps(record["address"])
                copy.write_row(tuple(record.values()))


def _append_platform(store: Any, table: str, data: Any) -> None:
    from patterns.store.model import Checkpoint, TableOp

    cp = Checkpoint("bench", "bench")
    cp.add(table, TableOp("append", data))
    store.commit(cp)


def _consume_platform(store: Any, table: str) -> int:
    from patterns.store.reads import next_pass

    n = 0
    with store.read() as view:
        meta = view.tables.get(table)
        for batch in view.stream(meta, next_pass(meta, None, None)):
            texts = batch.column("address").to_pylist()
            parsed = json.loads("[" + ",".join(t or "null" for t in texts) + "]")
            for record, address in zip(batch.to_pylist(), parsed, strict=True):
                record["address"] = address
                n += 1
    return n


def _consume_baseline(url: str, table: str) -> int:
    import psycopg

    from patterns.store.reads import BATCH_ROWS

    n = 0
    with psycopg.connect(url) as con, con.cursor(name="bench") as cur:
        cur.itersize = BATCH_ROWS
        cur.execute(f"SELECT * FROM {table} ORDER BY id")  # type: ignore[arg-type]
        names: list[str] | None = None
        for row in cur:
            if names is None:
                names = [d.name for d in cur.description or []]
            dict(zip(names, row, strict=True))
            n += 1
    return n


def run(small: bool) -> list[Figure]:
    from patterns.store.postgres import PostgresStore

    n, reps = (20_000, 2) if small else (1_000_000, 3)
    server = None
    given = os.environ.get("PATTERNS_BENCH_POSTGRES")
    if given is None:
        from patterns.store import pg_server

        server = pg_server.start()
    try:
        url = _database(given or server.url)  # type: ignore[union-attr]
        store = PostgresStore(url)
        data = arrow_table(0, n)
        append, append_base, consume, consume_base = [], [], [], []
        for k in range(reps):
            append_base.append(timed(lambda k=k: _copy_baseline(url, f"base_{k}", data)))
            append.append(timed(lambda k=k: _append_platform(store, f"src_{k}", data)))
            consume_base.append(timed(lambda k=k: _consume_baseline(url, f"base_{k}")))
            consume.append(timed(lambda k=k: _consume_platform(store, f"src_{k}")))
        assert _consume_platform(store, "src_0") == n == _consume_baseline(url, "base_0")
        store.close()
    finally:
        if server is not None:
            server.stop()
    note = f"median of {reps}; PostgreSQL {'given' if given else 'throwaway'}, same server"
    return [
        Figure("pg_store", "append through PostgresStore until committed", n / median(append),
               n / median(append_base), "records/s", ">= 0.8", n,
               note + "; baseline: psycopg binary COPY (write_row) from Arrow"),
        Figure("pg_store", "stream pass into dicts through PostgresStore",
               n / median(consume), n / median(consume_base), "records/s", ">= 0.8", n,
               note + "; baseline: named cursor into dicts"),
    ]
