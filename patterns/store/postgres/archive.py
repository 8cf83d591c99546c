"""The archive of a PostgreSQL store (see :mod:`patterns.store.archive`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc

from patterns.store.archive import SqlArchive
from patterns.store.ids import UlidSequence
from patterns.store.model import TableMeta
from patterns.store.postgres import reads
from patterns.store.postgres.appends import copy_rows
from patterns.store.postgres.migrations import DATA, META
from patterns.store.postgres.tables import PgTableWriter, physical_name, qualified, view
from patterns.store.postgres.view import PgConnection, PgView
from patterns.store.repositories import _KINDS, Tables


class PgArchive(SqlArchive):
    def __init__(self, pg: PgView) -> None:
        super().__init__(PgConnection(pg.cur))
        self.view = pg
        self.pg = pg
        self._writer = PgTableWriter(pg.cur, UlidSequence(), dt.datetime.now(dt.UTC), None)

    def version_rows(self, physical: str) -> pa.RecordBatchReader:
        columns = [(name, _KINDS.get(kind, "text")) for name, kind in
                   self.columns(DATA, physical)]
        return reads.copy_arrow(self.pg.con, f"SELECT * FROM {qualified(physical)}", columns)

    def physical(self, name: str, version: int) -> str:
        return physical_name(name, version)

    def put_version(self, meta: TableMeta, rows: pa.RecordBatchReader) -> int:
        made = self._writer.new_version(replace(meta, version=meta.version - 1),
                                        reason="copy")
        # (the version's own record comes with the metadata)
        self.pg.cur.execute(f"DELETE FROM {META}.table_versions WHERE name = %s AND "
                            f"version = %s", [meta.name, made.version])
        have = {n for n, _ in self.columns(DATA, made.physical)}
        names = [n for n in rows.schema.names if n in have]
        count = 0
        for batch in rows:
            if not names or not batch.num_rows:
                continue
            table = pa.table([_for_copy(batch.column(n)) for n in names], names=names)
            copy_rows(self.pg.cur, qualified(made.physical), names, table, meta.name)
            count += batch.num_rows
        return count

    def clear(self) -> None:
        for meta in Tables(self.con).all():
            self.pg.cur.execute(f"DROP VIEW IF EXISTS {view(meta.name)}")
        for physical in self.data_tables():
            self.pg.cur.execute(f"DROP TABLE {qualified(physical)} CASCADE")
        self.clear_meta()

    def finish(self) -> None:
        self.pg.cur.execute(f"SELECT setval('{META}.commit_seq', greatest(1, coalesce("
                            f"(SELECT max(seq) FROM {META}.commits), 0)), "
                            f"(SELECT count(*) > 0 FROM {META}.commits))")
        self.pg.cur.execute(f"UPDATE {META}.ids SET last_id = (SELECT max(last_id) FROM "
                            f"{META}.tables)")
        for meta in Tables(self.con).all():
            self._writer.refresh_view(meta)


def _for_copy(values: pa.Array) -> pa.Array:
    """A column as ``COPY`` reads it: bytes as ``\\x`` hex, dictionaries decoded."""
    t = values.type
    if pa.types.is_dictionary(t):
        values = pc.cast(values, t.value_type)
        t = t.value_type
    if pa.types.is_null(t):
        return pc.cast(values, pa.string())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return pa.array([None if v is None else "\\x" + bytes(v).hex()
                         for v in values.to_pylist()], pa.string())
    if pa.types.is_string_view(t):
        return pc.cast(values, pa.string())
    return values
