"""Table versions in PostgreSQL: physical tables, the user-facing views, schema evolution.

Each version is a physical table ``patterns_data."<name>__v<n>"`` whose id column (text in
the ``C`` collation, so ids sort as bytes) is its primary key: a stream pass is a range scan
of that index. The table's name is a view in ``public`` over the current version, so
``SELECT * FROM messages`` works in ``psql`` and in SQL nodes. Columns evolve by the rules of
:mod:`patterns.store.columns` (a new field adds a column; ``int → float``, ``date →
timestamp`` widen), as in the DuckDB store; the metadata rows are the same documents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from patterns.errors import NodeError
from patterns.store.columns import PARSED_FROM_TEXT, Column, kind_from_hint, widen
from patterns.store.conform import MAX_COLUMNS, Rules, check_names
from patterns.store.ids import UlidSequence
from patterns.store.model import StoreRules, TableMeta, TableOp, TableOptions, dumps
from patterns.store.postgres.migrations import DATA, META, VIEWS
from patterns.store.tables import Field, table_rules

if TYPE_CHECKING:
    import psycopg

    Cursor = psycopg.Cursor[tuple[Any, ...]]

SQL_TYPES = {
    "null": "TEXT", "bool": "BOOLEAN", "int": "BIGINT", "float": "DOUBLE PRECISION",
    "text": "TEXT", "date": "DATE", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ",
    "time": "TIME", "json": "JSONB", "bytes": "BYTEA",
}
#: PostgreSQL truncates longer identifiers (in bytes).
MAX_NAME = 63


def q(name: str) -> str:
    """Quote an identifier."""
    return '"' + name.replace('"', '""') + '"'


def qualified(physical: str) -> str:
    return f"{DATA}.{q(physical)}"


def view(name: str) -> str:
    return f"{VIEWS}.{q(name)}"


def physical_name(name: str, version: int) -> str:
    """``<name>__v<n>``, shortened with a hash of the name where PostgreSQL would cut it
    (the version's primary key index adds ``_pkey``)."""
    full = f"{name}__v{version}"
    if len(full.encode()) <= MAX_NAME - 5:
        return full
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{name.encode()[:30].decode(errors='ignore')}_{digest}__v{version}"


class PgTableWriter:
    """Applies staged operations to tables within the open transaction of ``cur``."""

    def __init__(self, cur: Cursor, ids: UlidSequence, now: dt.datetime, run_id: str | None,
                 *, rules: Mapping[str, StoreRules] | None = None,
                 max_columns: int | None = None, infer_timestamps: bool = False) -> None:
        self.cur = cur
        self.ids = ids
        self.now = now
        self.run_id = run_id
        self.store_rules = rules or {}
        self.max_columns = max_columns or MAX_COLUMNS
        self.infer_timestamps = infer_timestamps

    def rules(self, meta: TableMeta) -> Rules:
        return table_rules(meta.name, meta.options, self.store_rules.get(meta.name),
                           self.max_columns, infer_timestamps=self.infer_timestamps)

    # ----------------------------------------------------------------- lifecycle
    def create(self, name: str, options: TableOptions) -> TableMeta:
        if not name or len(name.encode()) > MAX_NAME:
            raise NodeError(f"table name {name!r} cannot be a PostgreSQL table: names are 1 "
                            f"to {MAX_NAME} bytes long; use a shorter name")
        declared = self.store_rules.get(name)
        if declared is not None and declared.schema and not options.schema:
            options = replace(options, schema=dict(declared.schema))
        id_column = options.add_monotonic_id
        if id_column is not None and not id_column:
            id_column = "patterns_id"
        meta = TableMeta(
            name=name, version=0, physical="", columns=explicit(name, options),
            id_column=id_column, created_column=options.add_created or None,
            unique_on=options.unique_on, last_id=None, last_commit=0, options=options)
        self.cur.execute(
            f"INSERT INTO {META}.tables (name, version, physical, columns, id_column, "
            f"created_column, last_commit, created_at, updated_at) "
            f"VALUES (%s, 0, '', '[]', %s, %s, 0, %s, %s)",
            [name, id_column, meta.created_column, self.now, self.now])
        return self.new_version(meta, reason="created")

    def new_version(self, meta: TableMeta, *, reason: str) -> TableMeta:
        version = meta.version + 1
        physical = physical_name(meta.name, version)
        cols = [f'{q(meta.physical_id)} TEXT COLLATE "C" NOT NULL PRIMARY KEY']
        if meta.created_column:
            cols.append(f"{q(meta.created_column)} TIMESTAMPTZ")
        cols += [f"{q(c.name)} {SQL_TYPES[c.kind]}" for c in meta.columns]
        self.cur.execute(f"CREATE TABLE {qualified(physical)} ({', '.join(cols)})")
        self.cur.execute(f"INSERT INTO {META}.table_versions VALUES (%s, %s, %s, %s, %s, %s)",
                         [meta.name, version, physical, self.now, self.run_id, reason])
        meta = replace(meta, version=version, physical=physical)
        self.refresh_view(meta)
        return meta

    def fresh_version(self, meta: TableMeta, *, reason: str) -> TableMeta:
        return self.new_version(replace(meta, columns=explicit(meta.name, meta.options)),
                                reason=reason)

    def init(self, meta: TableMeta, options: TableOptions) -> TableMeta:
        id_column = options.add_monotonic_id or None
        created = options.add_created or None
        if (id_column, created) != (meta.id_column, meta.created_column) \
                and self.count(meta) == 0:
            meta = replace(meta, id_column=id_column, created_column=created, options=options)
            self.cur.execute(f"UPDATE {META}.tables SET id_column = %s, created_column = %s "
                             f"WHERE name = %s", [id_column, created, meta.name])
            meta = self.new_version(replace(meta, columns=explicit(meta.name, options)),
                                    reason="init")
        columns = list(meta.columns)
        for col in explicit(meta.name, options):
            if meta.column(col.name) is None:
                self.cur.execute(f"ALTER TABLE {qualified(meta.physical)} "
                                 f"ADD COLUMN {q(col.name)} {SQL_TYPES[col.kind]}")
                columns.append(col)
        changed = len(columns) != len(meta.columns)
        meta = replace(meta, columns=tuple(columns), options=options,
                       unique_on=options.unique_on or meta.unique_on)
        if changed:
            self.refresh_view(meta)
        return meta

    def count(self, meta: TableMeta) -> int:
        row = self.cur.execute(f"SELECT count(*) FROM {qualified(meta.physical)}").fetchone()
        return int(row[0]) if row else 0

    # ----------------------------------------------------------------- operations
    def apply(self, meta: TableMeta, op: TableOp) -> tuple[TableMeta, int]:
        if op.kind == "init":
            assert op.options is not None
            return self.init(meta, op.options), 0
        if op.kind == "truncate":
            self.cur.execute(f"DELETE FROM {qualified(meta.physical)}")
            return meta, 0
        if op.kind in ("reset", "replace"):
            meta = self.fresh_version(meta, reason=op.kind)
            if op.kind == "reset" or op.data is None:
                return meta, 0
        if op.kind in ("delete", "alter"):
            from patterns.store.postgres.repair import alter_column, delete_rows

            if op.kind == "delete":
                assert op.where is not None
                return delete_rows(self, meta, op.where), 0
            assert op.alter is not None
            return alter_column(self, meta, *op.alter), 0
        if op.kind == "sql":
            from patterns.store.postgres.sql_writes import apply_sql

            assert op.sql is not None
            return apply_sql(self, meta, op.sql)
        from patterns.store.postgres.appends import append

        assert op.data is not None
        return append(self, meta, op.data, upsert=op.kind == "upsert", unique_on=op.unique_on)

    def evolve(self, meta: TableMeta, fields: Sequence[Field]) -> TableMeta:
        """New fields add columns; a column widens only losslessly."""
        rules = self.rules(meta)
        columns = list(meta.columns)
        check_names(meta.name, meta.kinds(), [f.name for f in fields], rules.max_columns)
        added: list[Column] = []
        retyped: list[tuple[Column, str]] = []
        for f in fields:
            existing = meta.column(f.name)
            if existing is None:
                added.append(Column(f.name, rules.declared.get(f.name, f.kind)))
                continue
            target = widen(existing.kind, f.kind, declared=f.name in rules.declared)
            if target is None:
                if f.kind == "text" and existing.kind in PARSED_FROM_TEXT:
                    continue
                raise NodeError(
                    f"table {meta.name!r}: field {f.name!r} has {f.kind} values, which do not "
                    f"fit its column of {existing.kind} values; cast them to "
                    f"{SQL_TYPES[existing.kind]} first, or write them to a new field")
            if target != existing.kind:
                retyped.append((existing, target))
        if not added and not retyped:
            return meta
        table = qualified(meta.physical)
        if retyped:  # (a view's columns cannot change type under it)
            self.cur.execute(f"DROP VIEW IF EXISTS {view(meta.name)}")
        for existing, target in retyped:
            using = (f"to_jsonb({q(existing.name)})" if target == "json"
                     else f"{q(existing.name)}::{SQL_TYPES[target]}")
            self.cur.execute(f"ALTER TABLE {table} ALTER COLUMN {q(existing.name)} TYPE "
                             f"{SQL_TYPES[target]} USING {using}")
            columns[columns.index(existing)] = Column(existing.name, target)
        if added:
            self.cur.execute(f"ALTER TABLE {table} " + ", ".join(
                f"ADD COLUMN {q(c.name)} {SQL_TYPES[c.kind]}" for c in added))
            columns += added
        meta = replace(meta, columns=tuple(columns))
        self.refresh_view(meta)
        return meta

    def refresh_view(self, meta: TableMeta) -> None:
        cols = ", ".join(q(c) for c in meta.visible_names())
        self.cur.execute(f"DROP VIEW IF EXISTS {view(meta.name)}")
        self.cur.execute(f"CREATE VIEW {view(meta.name)} AS SELECT {cols} "
                         f"FROM {qualified(meta.physical)}")

    def save(self, meta: TableMeta, seq: int | None) -> None:
        self.cur.execute(
            f"UPDATE {META}.tables SET version = %s, physical = %s, columns = %s, "
            f"unique_on = %s, options = %s, last_id = %s, "
            f"last_commit = coalesce(%s, last_commit), updated_at = %s WHERE name = %s",
            [meta.version, meta.physical, dumps([c.to_json() for c in meta.columns]),
             dumps(list(meta.unique_on)) if meta.unique_on else None,
             dumps(meta.options.to_json()), meta.last_id, seq, self.now, meta.name])


def explicit(table: str, options: TableOptions) -> tuple[Column, ...]:
    """The columns an explicit ``schema=`` asks for."""
    return tuple(Column(name, kind_from_hint(hint, field=name, table=table))
                 for name, hint in (options.schema or {}).items())


def prune_versions(cur: Cursor, meta: TableMeta, keep: int) -> None:
    """Drop the physical tables of versions older than the newest ``keep``."""
    rows = cur.execute(f"SELECT physical FROM {META}.table_versions WHERE name = %s AND "
                       f"version <= %s", [meta.name, meta.version - keep]).fetchall()
    for (physical,) in rows:
        if physical != meta.physical:
            cur.execute(f"DROP TABLE IF EXISTS {qualified(physical)}")
