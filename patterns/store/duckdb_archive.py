"""The archive of a DuckDB store (see :mod:`patterns.store.archive`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import duckdb
import pyarrow as pa

from patterns.store.archive import SqlArchive
from patterns.store.duckdb_view import DuckDBConnection, DuckDBView
from patterns.store.ids import UlidSequence, id_key_sql
from patterns.store.migrations import DATA, META
from patterns.store.model import ID_MS, TableMeta
from patterns.store.reads import BATCH_ROWS
from patterns.store.repositories import Tables
from patterns.store.tables import TableWriter, physical_name, q, qualified


class DuckDBArchive(SqlArchive):
    def __init__(self, view: DuckDBView) -> None:
        super().__init__(DuckDBConnection(view.cursor))
        self.view = view
        self.cur: duckdb.DuckDBPyConnection = view.cursor
        self._writer = TableWriter(self.cur, UlidSequence(), dt.datetime.now(dt.UTC), None)

    def version_rows(self, physical: str) -> pa.RecordBatchReader:
        return self.cur.sql(f"SELECT * FROM {qualified(physical)}").to_arrow_reader(BATCH_ROWS)

    def physical(self, name: str, version: int) -> str:
        return physical_name(name, version)

    def put_version(self, meta: TableMeta, rows: pa.RecordBatchReader) -> int:
        made = self._writer.new_version(replace(meta, version=meta.version - 1),
                                        reason="copy")
        # (the version's own record comes with the metadata)
        self.cur.execute(f"DELETE FROM {META}.table_versions WHERE name = ? AND version = ?",
                         [meta.name, made.version])
        have = dict(self.columns(DATA, made.physical))
        names = [n for n in rows.schema.names if n in have]
        if not names:
            return 0
        # (JSON text as DuckDB writes it: PostgreSQL's has spaces after its separators)
        values = [f"json({q(n)})" if have[n] == "JSON" else q(n) for n in names]
        if ID_MS in have and ID_MS not in names:  # (from a store without it: PostgreSQL's)
            # Each id's key, as this store writes it; an id made before blocks had keys
            # gets its first 13 characters too, which lie between its millisecond and the
            # key of any later id: the inclusive bounds of such ids (see finish) hold.
            names.append(ID_MS)
            values.append(id_key_sql(q(made.physical_id)))
        cols = ", ".join(q(n) for n in names)
        self.cur.register("__patterns_copy", rows)
        try:
            # (in id order: the rows of a version are kept in id order by rowid, which
            # pages of a big table rely on; see patterns.store.page_orders)
            order = (f" ORDER BY {q(made.physical_id)}" if made.physical_id in names else "")
            self.cur.execute(f"INSERT INTO {qualified(made.physical)} ({cols}) "
                             f"SELECT {', '.join(values)} FROM __patterns_copy{order}")
        finally:
            self.cur.unregister("__patterns_copy")
        found = self.cur.execute(f"SELECT count(*) FROM {qualified(made.physical)}").fetchone()
        return int(found[0]) if found else 0

    def clear(self) -> None:
        for meta in Tables(self.con).all():
            self.cur.execute(f"DROP VIEW IF EXISTS main.{q(meta.name)}")
        for physical in self.data_tables():
            self.cur.execute(f"DROP TABLE {qualified(physical)}")
        self.clear_meta()
        self.cur.execute(f"DELETE FROM {META}.id_order")

    def finish(self) -> None:
        found = self.cur.execute(f"SELECT coalesce(max(seq), 0) FROM {META}.commits").fetchone()
        last = int(found[0]) if found else 0
        self.cur.execute(f"DROP SEQUENCE {META}.commit_seq")
        self.cur.execute(f"CREATE SEQUENCE {META}.commit_seq START {last + 1}")
        for meta in Tables(self.con).all():
            self._writer._refresh_view(meta)
        # The copied ids may share their blocks' keys (made before migration 4, here or in
        # the PostgreSQL store they come from): streams bound passes up to the last of them
        # inclusively.
        self.cur.execute(
            f"UPDATE {META}.id_keys SET shared_up_to = (SELECT max(i) FROM (SELECT "
            f"shared_up_to AS i UNION ALL SELECT last_id FROM {META}.tables) AS ids)")
        # The copied versions hold their rows in the order the source handed them out
        # (PostgreSQL's is no order): passes over them sort, up to their last ids.
        self.cur.execute(f"DELETE FROM {META}.id_order")
        self.cur.execute(f"INSERT INTO {META}.id_order SELECT name, version, last_id FROM "
                         f"{META}.tables WHERE last_id IS NOT NULL")
