"""Numbered migrations of the platform metadata (schema ``patterns_meta``).

Metadata changes only through a new entry at the end of :data:`MIGRATIONS`; an applied
migration is never edited. The store applies the missing ones in order when it opens, each in
its own transaction, and records them in ``patterns_meta.migrations``. A step is a statement,
or a function of the transaction's cursor for a change that depends on the data (migration 3
changes every table version).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

META = "patterns_meta"
DATA = "patterns_data"

# No PRIMARY KEY constraints: DuckDB checks them eagerly within a transaction, which breaks
# updating one row twice in a checkpoint. The store keeps keys unique itself.
Step = str | Callable[["duckdb.DuckDBPyConnection"], None]


def add_id_ms(cur: duckdb.DuckDBPyConnection) -> None:
    """Give every stored table version the hidden ``_patterns_id_ms`` column (the millisecond
    of each row's id; see :data:`patterns.store.model.ID_MS`), computed from the ids its rows
    already have: the version is copied, in its order, into a table with the column (new row
    groups, whose zone maps cover it), which takes its name. The id column is a version's
    first column; it is stored compressed as a new version's is (:func:`id_compression`).
    Ids, and so stream positions, do not change."""
    from patterns.store.ids import id_ms_sql
    from patterns.store.model import ID_MS
    from patterns.store.tables import id_compression

    compressed = id_compression(cur)  # (the ids keep the compression new versions get)

    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    tables = cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? AND NOT temporary "
        "ORDER BY table_name", [DATA]).fetchall()
    for (table,) in tables:
        columns = cur.execute(
            "SELECT column_name, data_type, is_nullable FROM duckdb_columns() "
            "WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
            [DATA, table]).fetchall()
        defs = [f"{q(n)} {t} {compressed if i == 0 and t == 'VARCHAR' else ''}"
                f"{'' if nullable else 'NOT NULL'}"
                for i, (n, t, nullable) in enumerate(columns)]
        defs.append(f"{q(ID_MS)} BIGINT NOT NULL")
        new = f"{table}__with_id_ms"
        cur.execute(f"CREATE TABLE {DATA}.{q(new)} ({', '.join(defs)})")
        cur.execute(f"INSERT INTO {DATA}.{q(new)} SELECT *, {id_ms_sql(q(columns[0][0]))} "
                    f"FROM {DATA}.{q(table)} ORDER BY rowid")
        cur.execute(f"DROP TABLE {DATA}.{q(table)}")
        cur.execute(f"ALTER TABLE {DATA}.{q(new)} RENAME TO {q(table)}")


MIGRATIONS: list[tuple[int, str, list[Step]]] = [
    (1, "tables, versions, commits, runs, logs, state, stream positions", [
        f"CREATE SCHEMA IF NOT EXISTS {DATA}",
        # One row per table: its current version and the facts a commit needs.
        f"""CREATE TABLE {META}.tables (
            name VARCHAR,
            version INTEGER NOT NULL,
            physical VARCHAR NOT NULL,
            columns JSON NOT NULL,
            id_column VARCHAR,
            created_column VARCHAR,
            unique_on JSON,
            options JSON,
            last_id VARCHAR,
            last_commit BIGINT NOT NULL DEFAULT 0,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL)""",
        f"""CREATE TABLE {META}.table_versions (
            name VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            physical VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            run_id VARCHAR,
            reason VARCHAR NOT NULL)""",
        # The commit log: every checkpoint that changed a table. Drives reactive runs.
        f"CREATE SEQUENCE {META}.commit_seq START 1",
        f"""CREATE TABLE {META}.commits (
            seq BIGINT NOT NULL,
            table_name VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            run_id VARCHAR,
            node_id VARCHAR,
            rows_added BIGINT NOT NULL,
            committed_at TIMESTAMPTZ NOT NULL,
            wakes BOOLEAN NOT NULL DEFAULT true)""",
        f"""CREATE TABLE {META}.runs (
            id VARCHAR,
            node_id VARCHAR NOT NULL,
            node_title VARCHAR NOT NULL,
            trigger VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1,
            parameters JSON,
            queued_at TIMESTAMPTZ NOT NULL,
            started_at TIMESTAMPTZ,
            ended_at TIMESTAMPTZ,
            seen_commit BIGINT NOT NULL DEFAULT 0,
            rows_read JSON,
            rows_written JSON,
            checkpoints INTEGER NOT NULL DEFAULT 0,
            exit_code INTEGER,
            error VARCHAR,
            traceback VARCHAR)""",
        f"""CREATE TABLE {META}.run_logs (
            run_id VARCHAR,
            text VARCHAR NOT NULL,
            truncated BOOLEAN NOT NULL DEFAULT false)""",
        f"""CREATE TABLE {META}.node_state (
            node_id VARCHAR,
            doc JSON NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL)""",
        f"""CREATE TABLE {META}.stream_positions (
            node_id VARCHAR NOT NULL,
            table_name VARCHAR NOT NULL,
            position JSON NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL)""",
    ]),
    (2, "the durable run queue, cron schedules, webhook tokens", [
        # A run waiting to start (run_id NULL) or running (run_id set). An item leaves the
        # queue in the transaction that records its run's end, so a crash leaves it here.
        f"""CREATE TABLE {META}.run_queue (
            id VARCHAR NOT NULL,
            node_id VARCHAR NOT NULL,
            trigger VARCHAR NOT NULL,
            not_before TIMESTAMPTZ NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1,
            parameters JSON,
            enqueued_at TIMESTAMPTZ NOT NULL,
            run_id VARCHAR)""",
        # The next time a cron trigger fires, per node; moved on in the transaction that
        # queues the run, so a slot never fires twice.
        f"""CREATE TABLE {META}.schedules (
            node_id VARCHAR NOT NULL,
            cron VARCHAR NOT NULL,
            timezone VARCHAR NOT NULL,
            next_fire TIMESTAMPTZ NOT NULL)""",
        f"""CREATE TABLE {META}.webhooks (
            node_id VARCHAR NOT NULL,
            token VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL)""",
    ]),    (3, "the hidden _patterns_id_ms column of every table version (streams skip row groups)",
     [add_id_ms]),
    (4, "every block of ids has a key of its own; the last id made before that", [
        # Ids up to ``shared_up_to`` may share their first 13 characters (and the hidden
        # column holds their millisecond); every later block of ids has its own key. One
        # row; NULL: no id shares its key (see docs/store.md).
        f"CREATE TABLE {META}.id_keys (shared_up_to VARCHAR)",
        f"INSERT INTO {META}.id_keys SELECT max(last_id) FROM {META}.tables",
    ]),
    (5, "table versions whose rows may be stored out of id order, and up to which id", [
        # A version with no row here stores its rows in id order (appends add them at the
        # end, in order), so a stream pass needs no sort. A SQL UPDATE gives rows new ids
        # where they lie, and a copied version keeps its source's order: ids up to
        # ``unordered_up_to`` may lie anywhere, every later one is stored after them, in
        # order (see docs/store.md). Versions made before this migration: up to their last id.
        f"""CREATE TABLE {META}.id_order (
            name VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            unordered_up_to VARCHAR NOT NULL)""",
        f"INSERT INTO {META}.id_order SELECT name, version, last_id FROM {META}.tables "
        f"WHERE last_id IS NOT NULL",
    ]),
]
