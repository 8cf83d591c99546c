"""Numbered migrations of a PostgreSQL store's platform metadata (schema ``patterns_meta``).

The schemas mirror the DuckDB store's (:mod:`patterns.store.migrations`), with keys:
PostgreSQL checks them at each statement, which the store relies on (one row per table, run,
queue item...). Table versions are physical tables in ``patterns_data``; each table's current
version is a view of its name in ``public``. Opening a store applies the missing migrations in
order under an advisory lock (two processes opening a new store at once do not both migrate),
each in its own transaction, recorded in ``patterns_meta.migrations``. A store whose newest
migration is newer than this Patterns knows is refused: an older program must not write to it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from patterns.errors import StoreError
from patterns.store.postgres.connection import database_of, masked

if TYPE_CHECKING:
    import psycopg

META = "patterns_meta"
DATA = "patterns_data"
#: Where the user-facing views of tables live (a SQL node's ``FROM messages``).
VIEWS = "public"
#: The advisory lock key migrations take (commits take :data:`COMMIT_LOCK`).
MIGRATE_LOCK = 0x70617474_0001
COMMIT_LOCK = 0x70617474_0002

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "tables, versions, commits, runs, logs, state, stream positions", [
        f"CREATE SCHEMA IF NOT EXISTS {DATA}",
        f"""CREATE TABLE {META}.tables (
            name TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            physical TEXT NOT NULL,
            columns TEXT NOT NULL,
            id_column TEXT,
            created_column TEXT,
            unique_on TEXT,
            options TEXT,
            last_id TEXT COLLATE "C",
            last_commit BIGINT NOT NULL DEFAULT 0,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL)""",
        f"""CREATE TABLE {META}.table_versions (
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            physical TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            run_id TEXT,
            reason TEXT NOT NULL,
            PRIMARY KEY (name, version))""",
        f"CREATE SEQUENCE {META}.commit_seq START 1",
        f"""CREATE TABLE {META}.commits (
            seq BIGINT NOT NULL,
            table_name TEXT NOT NULL,
            version INTEGER NOT NULL,
            run_id TEXT,
            node_id TEXT,
            rows_added BIGINT NOT NULL,
            committed_at TIMESTAMPTZ NOT NULL,
            wakes BOOLEAN NOT NULL DEFAULT true,
            PRIMARY KEY (seq, table_name))""",
        # The newest patterns_id of the store: each commit starts its ids after it, so ids
        # grow in commit order whichever process commits.
        f"CREATE TABLE {META}.ids (one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one), "
        f"last_id TEXT COLLATE \"C\")",
        f"INSERT INTO {META}.ids VALUES (true, NULL)",
        f"""CREATE TABLE {META}.runs (
            id TEXT PRIMARY KEY,
            node_id TEXT NOT NULL,
            node_title TEXT NOT NULL,
            trigger TEXT NOT NULL,
            status TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1,
            parameters TEXT,
            queued_at TIMESTAMPTZ NOT NULL,
            started_at TIMESTAMPTZ,
            ended_at TIMESTAMPTZ,
            seen_commit BIGINT NOT NULL DEFAULT 0,
            rows_read TEXT,
            rows_written TEXT,
            checkpoints INTEGER NOT NULL DEFAULT 0,
            exit_code INTEGER,
            error TEXT,
            traceback TEXT)""",
        f"CREATE INDEX runs_node ON {META}.runs (node_id, queued_at)",
        f"""CREATE TABLE {META}.run_logs (
            run_id TEXT PRIMARY KEY,
            text TEXT NOT NULL,
            truncated BOOLEAN NOT NULL DEFAULT false)""",
        f"""CREATE TABLE {META}.node_state (
            node_id TEXT PRIMARY KEY,
            doc TEXT NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL)""",
        f"""CREATE TABLE {META}.stream_positions (
            node_id TEXT NOT NULL,
            table_name TEXT NOT NULL,
            position TEXT NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (node_id, table_name))""",
    ]),
    (2, "the durable run queue, cron schedules, webhook tokens", [
        f"""CREATE TABLE {META}.run_queue (
            id TEXT PRIMARY KEY,
            node_id TEXT NOT NULL,
            trigger TEXT NOT NULL,
            not_before TIMESTAMPTZ NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1,
            parameters TEXT,
            enqueued_at TIMESTAMPTZ NOT NULL,
            run_id TEXT)""",
        f"""CREATE TABLE {META}.schedules (
            node_id TEXT PRIMARY KEY,
            cron TEXT NOT NULL,
            timezone TEXT NOT NULL,
            next_fire TIMESTAMPTZ NOT NULL)""",
        f"""CREATE TABLE {META}.webhooks (
            node_id TEXT PRIMARY KEY,
            token TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL)""",
    ]),
    (3, "leases with expiry and fencing tokens", [
        f"""CREATE TABLE {META}.leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            token BIGINT NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL)""",
    ]),
]

LATEST = MIGRATIONS[-1][0]


def migrate(con: psycopg.Connection[tuple[object, ...]], url: str) -> None:
    """Apply the missing migrations (``con`` in autocommit off, no transaction open)."""
    import psycopg
    import psycopg.errors as pe

    try:
        with con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATE_LOCK])
            exists = con.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                 [META]).fetchone()
            if exists is None:
                con.execute(f"CREATE SCHEMA {META}")
            con.execute(f"CREATE TABLE IF NOT EXISTS {META}.migrations (version INTEGER "
                        f"PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
            done = {int(v) for (v,) in  # type: ignore[call-overload]
                    con.execute(f"SELECT version FROM {META}.migrations").fetchall()}
            newest = max(done, default=0)
            if newest > LATEST:
                raise StoreError(
                    f"the PostgreSQL store {masked(url)} was made by a newer Patterns (its "
                    f"schema is at migration {newest}; this Patterns knows up to {LATEST}): "
                    f"upgrade Patterns (pip install -U patterns-local) to open it")
            for version, name, statements in MIGRATIONS:
                if version in done:
                    continue
                with con.transaction():
                    for sql in statements:
                        con.execute(sql)  # type: ignore[arg-type]
                    con.execute(f"INSERT INTO {META}.migrations VALUES (%s, %s, %s)",
                                [version, name, dt.datetime.now(dt.UTC)])
    except pe.InsufficientPrivilege as exc:
        raise StoreError(
            f"the PostgreSQL store {masked(url)}: the URL's user may not create the store's "
            f"schemas in database {database_of(url)!r} ({' '.join(str(exc).split())}); "
            f"as the database's owner run GRANT CREATE ON DATABASE {database_of(url)} TO "
            f"<user>, or use a database the user owns") from None
    except psycopg.Error as exc:
        raise StoreError(f"cannot prepare the PostgreSQL store {masked(url)}: "
                         f"{' '.join(str(exc).split())}") from None
