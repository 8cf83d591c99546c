"""Every row a store holds, read out and written back whole (``patterns store copy``).

An :class:`~patterns.store.interface.Archive` is a store's view for moving all of it: the
platform metadata's rows (runs, logs, the queue, state, stream positions, webhook tokens,
schedules, tables and their versions, the commit log) and each table version's rows with
every column it has, its hidden ones included (so ``patterns_id`` values, and the stream
positions that point at them, survive). Metadata is copied by column name, written once here
in SQL both backends speak; what differs (reading and creating a table version, moving the
sequences on, dropping what a target had) is each backend's subclass. A write archive is one
transaction: a copy that fails leaves the target as it was.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from patterns.store.migrations import DATA, META
from patterns.store.repositories import Connection

#: The platform metadata tables an archive moves, in the order they are written. (Not the
#: migrations, which each store keeps itself; nor leases and the id high-water mark, which
#: belong to the engines of one store.)
METADATA = ("tables", "table_versions", "commits", "runs", "run_logs", "node_state",
            "stream_positions", "run_queue", "schedules", "webhooks")

#: Tables whose rows make a store "not empty" (a copy refuses to write over them).
_CONTENT = ("tables", "runs", "run_queue", "node_state", "stream_positions", "webhooks",
            "schedules")
_JSON_TYPES = ("JSON", "JSONB")


class SqlArchive:
    """The metadata half of an archive, over a backend's :class:`Connection`."""

    def __init__(self, con: Connection) -> None:
        self.con = con

    # ------------------------------------------------------------------ reading
    def columns(self, schema: str, table: str) -> list[tuple[str, str]]:
        """A table's columns and their SQL types, in order."""
        return [(str(n), str(t).upper()) for n, t in self.con.rows(
            "SELECT column_name, data_type FROM information_schema.columns WHERE "
            "table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, table])]

    def meta_rows(self, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Every row of a metadata table (JSON values as JSON text), and its column names."""
        cols = self.columns(META, table)
        select = ", ".join(f"CAST({_q(n)} AS VARCHAR)" if t in _JSON_TYPES else _q(n)
                           for n, t in cols)
        rows = self.con.rows(f"SELECT {select} FROM {META}.{table}")
        return [n for n, _ in cols], rows

    def data_tables(self) -> set[str]:
        return {str(t) for (t,) in self.con.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_type = 'BASE TABLE'", [DATA])}

    def is_empty(self) -> bool:
        return not any(self.con.rows(f"SELECT 1 FROM {META}.{t} LIMIT 1") for t in _CONTENT)

    # ------------------------------------------------------------------ writing
    def put_meta(self, table: str, names: Sequence[str],
                 rows: Sequence[Sequence[Any]]) -> int:
        """Insert ``rows`` (columns ``names``) into a metadata table, by the columns both
        have; how many rows."""
        have = {n for n, _ in self.columns(META, table)}
        keep = [i for i, n in enumerate(names) if n in have]
        if not rows or not keep:
            return 0
        cols = ", ".join(_q(names[i]) for i in keep)
        marks = ", ".join("?" * len(keep))
        sql = f"INSERT INTO {META}.{table} ({cols}) VALUES ({marks})"
        for row in rows:
            self.con.rows(sql, [_plain(row[i]) for i in keep])
        return len(rows)

    def clear_meta(self) -> None:
        for table in METADATA:
            self.con.rows(f"DELETE FROM {META}.{table}")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _plain(value: Any) -> Any:
    """(a JSON document a driver handed out parsed goes back as its text)"""
    return json.dumps(value) if isinstance(value, dict | list) else value
