"""Applying staged table operations inside a commit transaction (DuckDB SQL).

Each table version is a physical table ``patterns_data."<name>__v<n>"``; the user-facing name
is a view in ``main`` over the current version, so ``SELECT * FROM messages`` works in any
DuckDB client. Rows get their ``patterns_id`` here, at commit, from the store's ULID sequence.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from patterns.errors import NodeError
from patterns.store.columns import Column, is_nan_into_int, kind_from_hint, kind_of_arrow, widen
from patterns.store.ids import UlidSequence
from patterns.store.migrations import DATA, META
from patterns.store.model import DEFAULT_ID, HIDDEN_ID, TableMeta, TableOp, TableOptions, dumps

SQL_TYPES = {
    "null": "VARCHAR", "bool": "BOOLEAN", "int": "BIGINT", "float": "DOUBLE", "text": "VARCHAR",
    "date": "DATE", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ", "time": "TIME",
    "json": "JSON", "bytes": "BLOB",
}
_NESTED = ("json",)
_staging_names = itertools.count()


def q(name: str) -> str:
    """Quote an identifier."""
    return '"' + name.replace('"', '""') + '"'


def physical_name(name: str, version: int) -> str:
    return f"{name}__v{version}"


def qualified(physical: str) -> str:
    return f"{DATA}.{q(physical)}"


class TableWriter:
    """Applies one table's staged operations within an open transaction on ``cur``."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, ids: UlidSequence, now: dt.datetime,
                 run_id: str | None) -> None:
        self.cur = cur
        self.ids = ids
        self.now = now
        self.run_id = run_id

    # ----------------------------------------------------------------- table lifecycle
    def create(self, name: str, options: TableOptions) -> TableMeta:
        id_column = options.add_monotonic_id
        if id_column is not None and not id_column:
            id_column = DEFAULT_ID
        columns: list[Column] = []
        for field_name, hint in (options.schema or {}).items():
            columns.append(Column(field_name, kind_from_hint(hint, field=field_name, table=name)))
        meta = TableMeta(
            name=name, version=0, physical="", columns=tuple(columns), id_column=id_column,
            created_column=options.add_created or None, unique_on=options.unique_on,
            last_id=None, last_commit=0,
        )
        self.cur.execute(
            f"INSERT INTO {META}.tables VALUES (?, 0, '', '[]', ?, ?, ?, NULL, 0, ?, ?)",
            [name, id_column, meta.created_column,
             dumps(list(options.unique_on)) if options.unique_on else None, self.now, self.now],
        )
        return self.new_version(meta, reason="created")

    def new_version(self, meta: TableMeta, *, reason: str) -> TableMeta:
        version = meta.version + 1
        physical = physical_name(meta.name, version)
        cols = [f"{q(meta.physical_id)} VARCHAR NOT NULL"]
        if meta.created_column:
            cols.append(f"{q(meta.created_column)} TIMESTAMPTZ")
        cols += [f"{q(c.name)} {SQL_TYPES[c.kind]}" for c in meta.columns]
        self.cur.execute(f"CREATE TABLE {qualified(physical)} ({', '.join(cols)})")
        self.cur.execute(
            f"INSERT INTO {META}.table_versions VALUES (?, ?, ?, ?, ?, ?)",
            [meta.name, version, physical, self.now, self.run_id, reason],
        )
        meta = TableMeta(meta.name, version, physical, meta.columns, meta.id_column,
                         meta.created_column, meta.unique_on, meta.last_id, meta.last_commit)
        self._refresh_view(meta)
        return meta

    def apply_options(self, meta: TableMeta, options: TableOptions) -> TableMeta:
        """``init()`` on an existing table: unique_on and explicit columns."""
        columns = list(meta.columns)
        for field_name, hint in (options.schema or {}).items():
            if meta.column(field_name) is None:
                kind = kind_from_hint(hint, field=field_name, table=meta.name)
                self.cur.execute(f"ALTER TABLE {qualified(meta.physical)} "
                                 f"ADD COLUMN {q(field_name)} {SQL_TYPES[kind]}")
                columns.append(Column(field_name, kind))
        unique = options.unique_on or meta.unique_on
        meta = TableMeta(meta.name, meta.version, meta.physical, tuple(columns), meta.id_column,
                         meta.created_column, unique, meta.last_id, meta.last_commit)
        if len(columns) != len(meta.columns):
            self._refresh_view(meta)
        return meta

    # ----------------------------------------------------------------- operations
    def apply(self, meta: TableMeta, op: TableOp, options: TableOptions | None) -> tuple[TableMeta, int]:
        if op.kind == "truncate":
            self.cur.execute(f"DELETE FROM {qualified(meta.physical)}")
            return meta, 0
        if op.kind == "reset":
            return self.new_version(replace(meta, columns=()), reason="reset"), 0
        assert op.data is not None
        if op.kind == "replace":
            # A new version infers its schema afresh (an explicit schema is re-applied by
            # the options of the same checkpoint).
            meta = self.new_version(replace(meta, columns=()), reason="replace")
            if options is not None and options.schema:
                meta = self.apply_options(meta, options)
        data = self._strip_platform_columns(meta, op.data)
        if data.num_rows == 0:
            if data.num_columns:
                meta = self._evolve(meta, data, options)
            return meta, 0
        meta = self._evolve(meta, data, options)
        if op.kind == "upsert":
            unique = op.unique_on or meta.unique_on
            if not unique:
                raise NodeError(
                    f"table {meta.name!r}: upsert needs the fields that identify a record; "
                    f"call table.init(unique_on=['id']) or pass upsert(records, unique_on=[...])"
                )
            missing = [k for k in unique if k not in data.column_names]
            if missing:
                raise NodeError(f"table {meta.name!r}: upserted records lack the unique_on "
                                f"field(s) {missing}; every record must carry {list(unique)}")
            if op.unique_on and op.unique_on != meta.unique_on:
                meta = TableMeta(meta.name, meta.version, meta.physical, meta.columns,
                                 meta.id_column, meta.created_column, op.unique_on, meta.last_id,
                                 meta.last_commit)
            count = self._insert(meta, data, unique=tuple(unique))
        else:
            count = self._insert(meta, data, unique=None)
        return replace(meta, last_id=self.ids.last()), count

    def _strip_platform_columns(self, meta: TableMeta, data: pa.Table) -> pa.Table:
        """A record copied from another table carries its ids: the new table assigns its own."""
        drop = {DEFAULT_ID, HIDDEN_ID, meta.physical_id}
        if meta.created_column:
            drop.add(meta.created_column)
        names = [n for n in data.column_names if n in drop]
        return data.drop_columns(names) if names else data

    def _evolve(self, meta: TableMeta, data: pa.Table, options: TableOptions | None) -> TableMeta:
        check_fits(meta, data)
        hints = (options.schema_hints or {}) if options else {}
        columns = list(meta.columns)
        changed = False
        for f in data.schema:
            incoming = kind_of_arrow(f.type, f)
            existing = meta.column(f.name)
            if existing is None:
                kind = (kind_from_hint(hints[f.name], field=f.name, table=meta.name)
                        if f.name in hints else incoming)
                self.cur.execute(f"ALTER TABLE {qualified(meta.physical)} "
                                 f"ADD COLUMN {q(f.name)} {SQL_TYPES[kind]}")
                columns.append(Column(f.name, kind))
                changed = True
                continue
            target = widen(existing.kind, incoming)
            if target != existing.kind:
                using = f"to_json({q(f.name)})" if target == "json" else q(f.name)
                if existing.kind == "json" and target == "text":
                    using = f"CAST({q(f.name)} AS VARCHAR)"
                self.cur.execute(
                    f"ALTER TABLE {qualified(meta.physical)} ALTER COLUMN {q(f.name)} "
                    f"SET DATA TYPE {SQL_TYPES[target]} USING CAST({using} AS {SQL_TYPES[target]})"
                )
                columns[columns.index(existing)] = Column(f.name, target)
                changed = True
        if changed:
            meta = meta.with_columns(tuple(columns))
            self._refresh_view(meta)
        return meta

    def _insert(self, meta: TableMeta, data: pa.Table, unique: Sequence[str] | None) -> int:
        n = data.num_rows
        data = data.append_column("__pid", self.ids.block(n))
        data = data.append_column("__ord", pa.array(np.arange(n, dtype=np.int64)))
        staging = f"__patterns_stage_{next(_staging_names)}"
        self.cur.register(staging, data)
        try:
            target_cols = [meta.physical_id]
            select = ["__pid"]
            if meta.created_column:
                target_cols.append(meta.created_column)
                select.append("?::TIMESTAMPTZ")
            params: list[Any] = [self.now] if meta.created_column else []
            for f in data.schema:
                if f.name in ("__pid", "__ord"):
                    continue
                col = meta.column(f.name)
                assert col is not None
                target_cols.append(f.name)
                select.append(_cast(f, col.kind))
            source = staging
            if unique:
                keys = ", ".join(q(k) for k in unique)
                source = (f"(SELECT * FROM {staging} QUALIFY row_number() OVER "
                          f"(PARTITION BY {keys} ORDER BY __ord DESC) = 1)")
                key_types = {k: SQL_TYPES[meta.column(k).kind] for k in unique}  # type: ignore[union-attr]
                match = " AND ".join(
                    f"t.{q(k)} IS NOT DISTINCT FROM CAST(s.{q(k)} AS {key_types[k]})"
                    for k in unique)
                self.cur.execute(
                    f"DELETE FROM {qualified(meta.physical)} t WHERE EXISTS "
                    f"(SELECT 1 FROM {staging} s WHERE {match})"
                )
            self.cur.execute(
                f"INSERT INTO {qualified(meta.physical)} ({', '.join(q(c) for c in target_cols)}) "
                f"SELECT {', '.join(select)} FROM {source} ORDER BY __ord",
                params,
            )
            inserted = self.cur.fetchall()
            count = int(inserted[0][0]) if inserted else n
        except duckdb.ConversionException as exc:
            raise NodeError(f"table {meta.name!r}: a value does not fit its column: {exc}") from exc
        finally:
            self.cur.unregister(staging)
        return count

    def _refresh_view(self, meta: TableMeta) -> None:
        cols = ", ".join(q(c) for c in meta.visible_names())
        self.cur.execute(f"CREATE OR REPLACE VIEW main.{q(meta.name)} AS "
                         f"SELECT {cols} FROM {qualified(meta.physical)}")

    def save(self, meta: TableMeta, seq: int | None) -> None:
        self.cur.execute(
            f"UPDATE {META}.tables SET version = ?, physical = ?, columns = ?, unique_on = ?, "
            f"last_id = ?, last_commit = coalesce(?, last_commit), updated_at = ? WHERE name = ?",
            [meta.version, meta.physical, dumps([c.to_json() for c in meta.columns]),
             dumps(list(meta.unique_on)) if meta.unique_on else None, meta.last_id, seq,
             self.now, meta.name],
        )


def check_fits(meta: TableMeta, data: pa.Table) -> None:
    """Refuse values that must not silently change a column (NaN into integers)."""
    for f in data.schema:
        existing = meta.column(f.name)
        if existing is not None and is_nan_into_int(existing.kind, f.type, data.column(f.name)):
            import pyarrow.compute as pc

            at = pc.index(pc.is_nan(data.column(f.name)), True).as_py()
            raise NodeError(
                f"table {meta.name!r}: field {f.name!r} got NaN, but its column holds "
                f"integers; use None for a missing value, or declare the field as float "
                f"with table.init(schema_hints={{{f.name!r}: 'float'}})", record=at,
            )


def _cast(f: pa.Field, kind: str) -> str:
    incoming = kind_of_arrow(f.type, f)
    col = q(f.name)
    if kind == "json":
        if incoming == "json" and not (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)):
            return f"to_json({col})"
        if incoming == "json":
            return f"CAST({col} AS JSON)"
        return f"to_json({col})"
    if kind == "text" and incoming == "json":
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            return col
        return f"CAST(to_json({col}) AS VARCHAR)"
    if incoming == kind:
        return col
    return f"CAST({col} AS {SQL_TYPES[kind]})"
