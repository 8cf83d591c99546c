"""Applying staged table operations inside a commit transaction (DuckDB SQL).

Each table version is a physical table ``patterns_data."<name>__v<n>"``; the user-facing name
is a view in ``main`` over the current version, so ``SELECT * FROM messages`` works in any
DuckDB client. Rows get their ``patterns_id`` here, at commit, from the store's ULID sequence,
and the hidden ``_patterns_id_ms`` (:data:`~patterns.store.model.ID_MS`) with it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from patterns.errors import NodeError
from patterns.store.columns import (
    PARSED_FROM_TEXT,
    Column,
    is_nan_into_int,
    kind_from_hint,
    kind_of_arrow,
    kind_of_duckdb,
    widen,
)
from patterns.store.conform import MAX_COLUMNS, Rules, check_names, conform
from patterns.store.ids import UlidSequence
from patterns.store.migrations import DATA, META
from patterns.store.model import (
    DEFAULT_ID,
    HIDDEN_ID,
    ID_MS,
    StoreRules,
    TableMeta,
    TableOp,
    TableOptions,
    dumps,
)

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


@dataclass(frozen=True)
class Field:
    """One field of incoming rows: the kind its values need, and whether JSON values arrive
    as JSON text (rather than as lists and structs to be turned into JSON)."""

    name: str
    kind: str
    json_text: bool = False
    source: str | None = None  # the column it comes from, when named otherwise there


@dataclass(frozen=True)
class Rows:
    """Rows to add to a table: ``source`` names a relation of the open transaction (a
    registered Arrow table or a temporary table) holding ``fields``; ``with_ids`` when it
    also carries each row's new id (``__pid``) and position (``__ord``), ids of one block
    whose key (:data:`~patterns.store.model.ID_MS`) is ``ids_ms``."""

    source: str
    fields: tuple[Field, ...]
    count: int
    with_ids: bool = False
    ids_ms: int = 0
    #: Parameters of ``source`` (a few rows as a ``VALUES`` list: :mod:`.small_rows`).
    params: tuple[Any, ...] = ()


def arrow_fields(schema: pa.Schema) -> tuple[Field, ...]:
    return tuple(Field(f.name, kind_of_arrow(f.type, f),
                       pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
                 for f in schema)


def relation_rows(cur: duckdb.DuckDBPyConnection, relation: str) -> Rows:
    """The rows of a (temporary) table, typed by DuckDB: a HUGEINT sum is an int."""
    described = cur.execute(f"DESCRIBE {relation}").fetchall()
    fields = tuple(Field(str(row[0]), kind_of_duckdb(str(row[1])),
                         str(row[1]).upper() == "JSON") for row in described)
    count = int(cur.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0])
    return Rows(relation, fields, count)


class SchemaWouldChange(Exception):
    """Raised instead of altering a table by a writer that must not (``fixed_schema``)."""


class TableWriter:
    """Applies one table's staged operations within an open transaction on ``cur``.
    ``fixed_schema``: rows that need a new column or a wider one raise
    :class:`SchemaWouldChange` instead (rows inserted before their commit,
    :mod:`patterns.store.duckdb_early`, never alter their table)."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, ids: UlidSequence, now: dt.datetime,
                 run_id: str | None, *, rules: Mapping[str, StoreRules] | None = None,
                 max_columns: int | None = None, infer_timestamps: bool = False,
                 id_compression: str | None = None, fixed_schema: bool = False) -> None:
        self.cur = cur
        self.fixed_schema = fixed_schema
        #: How new versions store their ids (:func:`id_compression`; None: ask the file).
        self.id_compression = id_compression
        self.ids = ids
        self.now = now
        self.run_id = run_id
        self.store_rules = rules or {}
        self.max_columns = max_columns or MAX_COLUMNS
        self.infer_timestamps = infer_timestamps

    def rules(self, meta: TableMeta) -> Rules:
        """What ``meta``'s rows must obey (see :mod:`patterns.store.conform`)."""
        return table_rules(meta.name, meta.options, self.store_rules.get(meta.name),
                           self.max_columns,
                           infer_timestamps=self.infer_timestamps)

    # ----------------------------------------------------------------- table lifecycle
    def create(self, name: str, options: TableOptions) -> TableMeta:
        declared = self.store_rules.get(name)
        if declared is not None and declared.schema and not options.schema:
            options = replace(options, schema=dict(declared.schema),
                              schema_name=options.schema_name or declared.schema_name)
        if declared is not None and declared.unique_on and not options.unique_on:
            options = replace(options, unique_on=declared.unique_on)
        id_column = options.add_monotonic_id
        if id_column is not None and not id_column:
            id_column = DEFAULT_ID
        meta = TableMeta(
            name=name, version=0, physical="", columns=_explicit(name, options),
            id_column=id_column, created_column=options.add_created or None,
            unique_on=options.unique_on, last_id=None, last_commit=0, options=options,
        )
        self.cur.execute(
            f"INSERT INTO {META}.tables (name, version, physical, columns, id_column, "
            f"created_column, unique_on, options, last_id, last_commit, created_at, updated_at) "
            f"VALUES (?, 0, '', '[]', ?, ?, NULL, NULL, NULL, 0, ?, ?)",
            [name, id_column, meta.created_column, self.now, self.now],
        )
        return self.new_version(meta, reason="created")

    def new_version(self, meta: TableMeta, *, reason: str) -> TableMeta:
        version = meta.version + 1
        physical = physical_name(meta.name, version)
        if self.id_compression is None:
            self.id_compression = id_compression(self.cur)
        cols = [f"{q(meta.physical_id)} VARCHAR {self.id_compression}NOT NULL",
                f"{q(ID_MS)} BIGINT NOT NULL"]
        if meta.created_column:
            cols.append(f"{q(meta.created_column)} TIMESTAMPTZ")
        cols += [f"{q(c.name)} {SQL_TYPES[c.kind]}" for c in meta.columns]
        self.cur.execute(f"CREATE TABLE {qualified(physical)} ({', '.join(cols)})")
        self.cur.execute(
            f"INSERT INTO {META}.table_versions VALUES (?, ?, ?, ?, ?, ?)",
            [meta.name, version, physical, self.now, self.run_id, reason],
        )
        meta = replace(meta, version=version, physical=physical)
        self._refresh_view(meta)
        return meta

    def fresh_version(self, meta: TableMeta, *, reason: str) -> TableMeta:
        """A new, empty version that infers its schema afresh (from the explicit schema if
        there is one)."""
        return self.new_version(replace(meta, columns=_explicit(meta.name, meta.options)),
                                reason=reason)

    def _init(self, meta: TableMeta, options: TableOptions) -> TableMeta:
        """``init()``: the id and created columns can change only while the table is empty
        (they then take effect in a new version); the rest applies at once."""
        id_column = options.add_monotonic_id or None
        created = options.add_created or None
        if (id_column, created) != (meta.id_column, meta.created_column):
            rows = self.cur.execute(f"SELECT count(*) FROM {qualified(meta.physical)}").fetchall()
            if rows[0][0] == 0:
                meta = replace(meta, id_column=id_column, created_column=created, options=options)
                self.cur.execute(f"UPDATE {META}.tables SET id_column = ?, created_column = ? "
                                 f"WHERE name = ?", [id_column, created, meta.name])
                meta = self.new_version(replace(meta, columns=_explicit(meta.name, options)),
                                        reason="init")
        return self.apply_options(meta, options)

    def apply_options(self, meta: TableMeta, options: TableOptions) -> TableMeta:
        """``init()`` on an existing table: explicit columns, hints, unique_on."""
        columns = list(meta.columns)
        for col in _explicit(meta.name, options):
            if meta.column(col.name) is None:
                self.cur.execute(f"ALTER TABLE {qualified(meta.physical)} "
                                 f"ADD COLUMN {q(col.name)} {SQL_TYPES[col.kind]}")
                columns.append(col)
        changed = len(columns) != len(meta.columns)
        meta = replace(meta, columns=tuple(columns), options=options,
                       unique_on=options.unique_on or meta.unique_on)
        if changed:
            self._refresh_view(meta)
        return meta

    # ----------------------------------------------------------------- operations
    def apply(self, meta: TableMeta, op: TableOp) -> tuple[TableMeta, int]:
        if op.kind == "init":
            assert op.options is not None
            return self._init(meta, op.options), 0
        if op.kind == "truncate":
            self.cur.execute(f"DELETE FROM {qualified(meta.physical)}")
            return meta, 0
        if op.kind in ("reset", "replace"):
            meta = self.fresh_version(meta, reason=op.kind)
            if op.kind == "reset" or op.data is None:
                return meta, 0
        if op.kind in ("delete", "alter"):
            from patterns.store.repair import alter_column, delete_rows

            if op.kind == "delete":
                assert op.where is not None
                return delete_rows(self, meta, op.where), 0
            assert op.alter is not None
            return alter_column(self, meta, *op.alter), 0
        if op.kind == "sql":
            from patterns.store.sql_writes import apply_sql

            assert op.sql is not None
            return apply_sql(self, meta, op.sql)
        assert op.data is not None
        data = self._strip_platform_columns(meta, op.data)
        data = _in_big_chunks(conform(meta.name, meta.kinds(), data, self.rules(meta)))
        check_fits(meta.name, meta.kinds(), data)
        fields, n = arrow_fields(data.schema), data.num_rows
        if n:
            data = data.append_column("__pid", self.ids.block(n))
            data = data.append_column("__ord", pa.array(np.arange(n, dtype=np.int64)))
        if op.kind != "upsert":  # (an upsert reads its rows twice)
            from patterns.store.small_rows import as_values

            values = as_values(data, q)
            if values is not None:
                return self.add_rows(meta, Rows(values[0], fields, n, with_ids=True,
                                                ids_ms=self.ids.key, params=values[1]))
        staging = f"__patterns_stage_{next(_staging_names)}"
        self.cur.register(staging, data)
        try:
            return self.add_rows(meta, Rows(staging, fields, n, with_ids=True,
                                            ids_ms=self.ids.key),
                                 upsert=op.kind == "upsert", unique_on=op.unique_on)
        finally:
            with contextlib.suppress(duckdb.Error):  # fails in an aborted transaction
                self.cur.unregister(staging)

    def add_rows(self, meta: TableMeta, rows: Rows, *, upsert: bool = False,
                 unique_on: tuple[str, ...] | None = None) -> tuple[TableMeta, int]:
        """Add ``rows`` (evolving the schema first); with ``upsert``, rows replace the rows
        that share their unique_on fields."""
        if rows.count == 0:
            if rows.fields:
                meta = self._evolve(meta, rows.fields)
            return meta, 0
        meta = self._evolve(meta, rows.fields)
        names = {f.name for f in rows.fields}
        if upsert:
            unique = unique_on or meta.unique_on
            if not unique:
                raise NodeError(
                    f"table {meta.name!r}: upsert needs the fields that identify a record; "
                    f"call table.init(unique_on=['id']) or pass upsert(records, unique_on=[...])"
                )
            missing = [k for k in unique if k not in names]
            if missing:
                raise NodeError(f"table {meta.name!r}: upserted records lack the unique_on "
                                f"field(s) {missing}; every record must carry {list(unique)}")
            if unique_on and unique_on != meta.unique_on:
                meta = replace(meta, unique_on=unique_on)
            count = self._insert(meta, rows, unique=tuple(unique))
        else:
            count = self._insert(meta, rows, unique=None)
        return replace(meta, last_id=self.ids.last()), count

    def _strip_platform_columns(self, meta: TableMeta, data: pa.Table) -> pa.Table:
        """A record copied from another table carries its ids: the new table assigns its own."""
        drop = {DEFAULT_ID, HIDDEN_ID, ID_MS, meta.physical_id}
        if meta.created_column:
            drop.add(meta.created_column)
        names = [n for n in data.column_names if n in drop]
        return data.drop_columns(names) if names else data

    def _evolve(self, meta: TableMeta, fields: Sequence[Field]) -> TableMeta:
        """New fields add columns; a column widens only losslessly (int → float, date →
        timestamp) and never for values that do not fit (those were refused before)."""
        rules = self.rules(meta)
        columns = list(meta.columns)
        check_names(meta.name, meta.kinds(), [f.name for f in fields], rules.max_columns)
        changed = False
        for f in fields:
            existing = meta.column(f.name)
            if existing is None:
                if self.fixed_schema:
                    raise SchemaWouldChange(f.name)
                kind = rules.declared.get(f.name, f.kind)
                self.cur.execute(f"ALTER TABLE {qualified(meta.physical)} "
                                 f"ADD COLUMN {q(f.name)} {SQL_TYPES[kind]}")
                columns.append(Column(f.name, kind))
                changed = True
                continue
            target = widen(existing.kind, f.kind, declared=f.name in rules.declared)
            if target is None:
                if f.kind == "text" and existing.kind in PARSED_FROM_TEXT:
                    continue  # (SQL) text cast to the column's type, or refused by the cast
                raise NodeError(
                    f"table {meta.name!r}: field {f.name!r} has {f.kind} values, which do not "
                    f"fit its column of {existing.kind} values; cast them to "
                    f"{SQL_TYPES[existing.kind]} first, or write them to a new field")
            if target != existing.kind:
                if self.fixed_schema:
                    raise SchemaWouldChange(f.name)
                using = f"to_json({q(f.name)})" if target == "json" else q(f.name)
                self.cur.execute(
                    f"ALTER TABLE {qualified(meta.physical)} ALTER COLUMN {q(f.name)} "
                    f"SET DATA TYPE {SQL_TYPES[target]} USING CAST({using} AS {SQL_TYPES[target]})"
                )
                columns[columns.index(existing)] = Column(f.name, target)
                changed = True
        if changed:
            meta = replace(meta, columns=tuple(columns))
            self._refresh_view(meta)
        return meta

    def _insert(self, meta: TableMeta, rows: Rows, unique: Sequence[str] | None) -> int:
        """Insert ``rows`` with new ids, in the order of the source's rows."""
        n = rows.count
        ids = f"__patterns_ids_{next(_staging_names)}"
        numbered = rows.source
        ids_ms = rows.ids_ms
        if not rows.with_ids:  # ids join the rows in the order they were made
            self.cur.register(ids, pa.table({"__ord": pa.array(np.arange(n, dtype=np.int64)),
                                             "__pid": self.ids.block(n)}))
            ids_ms = self.ids.key
            numbered = (f"(SELECT s.*, i.__pid, i.__ord FROM (SELECT *, row_number() OVER "
                        f"(ORDER BY rowid) - 1 AS __n FROM {rows.source}) s "
                        f"JOIN {ids} i ON i.__ord = s.__n)")
        try:
            target_cols = [meta.physical_id, ID_MS]
            select = ["__pid", "?::BIGINT"]  # (one block of ids: one key)
            params: list[Any] = [ids_ms]
            if meta.created_column:
                target_cols.append(meta.created_column)
                select.append("?::TIMESTAMPTZ")
                params.append(self.now)
            for f in rows.fields:
                col = meta.column(f.name)
                assert col is not None
                target_cols.append(f.name)
                select.append(_cast(f, col.kind))
            source = numbered
            if unique:
                keys = ", ".join(q(k) for k in unique)
                source = (f"(SELECT * FROM {numbered} QUALIFY row_number() OVER "
                          f"(PARTITION BY {keys} ORDER BY __ord DESC) = 1)")
                key_types = {k: SQL_TYPES[meta.column(k).kind] for k in unique}  # type: ignore[union-attr]
                match = " AND ".join(
                    f"t.{q(k)} IS NOT DISTINCT FROM CAST(s.{q(k)} AS {key_types[k]})"
                    for k in unique)
                self.cur.execute(
                    f"DELETE FROM {qualified(meta.physical)} t WHERE EXISTS "
                    f"(SELECT 1 FROM {rows.source} s WHERE {match})"
                )
            # A registered Arrow table is scanned in its order, and DuckDB keeps insertion
            # order: only the de-duplicated or joined sources need sorting back.
            order = "" if rows.with_ids and not unique else " ORDER BY __ord"
            self.cur.execute(
                f"INSERT INTO {qualified(meta.physical)} ({', '.join(q(c) for c in target_cols)}) "
                f"SELECT {', '.join(select)} FROM {source}{order}",
                [*params, *rows.params],
            )
            inserted = self.cur.fetchall()
            count = int(inserted[0][0]) if inserted else n
        except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
            message = str(exc).split("\n\nLINE ")[0].replace("\n", " ")
            raise NodeError(f"table {meta.name!r}: a value does not fit its column "
                            f"({message}); nothing was written") from exc
        finally:
            if not rows.with_ids:
                with contextlib.suppress(duckdb.Error):  # fails in an aborted transaction
                    self.cur.unregister(ids)
        return count

    def stored_out_of_order(self, meta: TableMeta, up_to: str) -> None:
        """Rows of ``meta``'s version with ids up to ``up_to`` may now lie anywhere in its
        storage (new ids given in place); later ones are added after them, in order. See
        :func:`stored_in_order`."""
        self.cur.execute(f"DELETE FROM {META}.id_order WHERE name = ? AND version = ?",
                         [meta.name, meta.version])
        self.cur.execute(f"INSERT INTO {META}.id_order VALUES (?, ?, ?)",
                         [meta.name, meta.version, up_to])

    def _refresh_view(self, meta: TableMeta) -> None:
        # (a table with no fields yet and no visible id still needs a column to select)
        cols = ", ".join(q(c) for c in meta.visible_names() or [meta.physical_id])
        self.cur.execute(f"CREATE OR REPLACE VIEW main.{q(meta.name)} AS "
                         f"SELECT {cols} FROM {qualified(meta.physical)}")

    def save(self, meta: TableMeta, seq: int | None, *, before: TableMeta | None = None) -> None:
        """The table's row as ``meta`` says; ``before``: what the row held, so only what
        changed is set (an append changes its last id and commit: each column set costs)."""
        facts = _facts(meta)
        if before is not None:
            was = _facts(before)
            facts = {k: v for k, v in facts.items() if v != was[k]}
        sets = "".join(f"{k} = ?, " for k in facts)
        self.cur.execute(
            f"UPDATE {META}.tables SET {sets}last_commit = coalesce(?, last_commit), "
            f"updated_at = ? WHERE name = ?", [*facts.values(), seq, self.now, meta.name])


def _facts(meta: TableMeta) -> dict[str, Any]:
    """The columns of a table's row that a commit may change, as stored."""
    return {"version": meta.version, "physical": meta.physical,
            "columns": dumps([c.to_json() for c in meta.columns]),
            "unique_on": dumps(list(meta.unique_on)) if meta.unique_on else None,
            "options": dumps(meta.options.to_json()), "last_id": meta.last_id}


def stored_in_order(cur: duckdb.DuckDBPyConnection, meta: TableMeta,
                    after: str | None) -> bool:
    """Whether the rows of ``meta``'s version with ids greater than ``after`` (None: all of
    them) lie in its storage in id order, so a scan without ``ORDER BY`` hands them out in
    that order (DuckDB keeps insertion order). Appends add rows at the end in id order, and
    deletes leave the rest in place; what gives rows new ids in place (a SQL ``UPDATE``), or
    a copy of the version, records how far that reaches (migration 5)."""
    found = cur.execute(f"SELECT unordered_up_to FROM {META}.id_order WHERE name = ? AND "
                        f"version = ?", [meta.name, meta.version]).fetchall()
    return not found or (after is not None and after >= str(found[0][0]))


def table_rules(table: str, options: TableOptions, declared: StoreRules | None,
                max_columns: int, *, infer_timestamps: bool = False) -> Rules:
    """A table's rules: ``init()`` options win over graph.yml's declarations."""
    contract = options.contract or (declared.contract if declared else None) or "refuse"
    kinds: dict[str, str] = {}
    for source in ((declared.schema if declared else None), options.schema,
                   options.schema_hints):
        for name, hint in (source or {}).items():
            kinds[name] = kind_from_hint(hint, field=name, table=table)
    return Rules(contract=contract, declared=kinds, max_columns=max_columns,
                 infer_timestamps=infer_timestamps)


#: The oldest storage format whose files take ZSTD for text columns.
_ZSTD_STORAGE = (1, 2, 0)


def id_compression(cur: duckdb.DuckDBPyConnection) -> str:
    """How the id column of a new table version is compressed (a clause for its definition).

    Ids are unique 26-character strings. DuckDB's default for text (it weighs dictionary and
    FSST, then takes FSST) is most of the cost of inserting them: 1M ids inserted with the
    default took 425 ms of CPU, with ZSTD 142 ms (the same rows without ids: 34 ms), and the
    ZSTD column is smaller (6.8 MB against 8.4; uncompressed, 30 MB). Reading and filtering
    them cost the same (docs/store.md, "How ids are stored"). Files of a storage format
    before 1.2 cannot hold ZSTD text: their new versions keep the default."""
    row = cur.execute("SELECT tags['storage_version'] FROM duckdb_databases() "
                      "WHERE database_name = current_database()").fetchall()
    version = str(row[0][0] or "") if row else ""
    digits = re.findall(r"\d+", version)[:3]
    if len(digits) == 3 and tuple(int(d) for d in digits) >= _ZSTD_STORAGE:
        return "USING COMPRESSION zstd "
    return ""


def _explicit(table: str, options: TableOptions) -> tuple[Column, ...]:
    """The columns an explicit ``schema=`` asks for."""
    return tuple(Column(name, kind_from_hint(hint, field=name, table=table))
                 for name, hint in (options.schema or {}).items())


def prune_versions(cur: duckdb.DuckDBPyConnection, meta: TableMeta, keep: int) -> None:
    """Drop the physical tables of versions older than the newest ``keep`` (the version
    records stay, so `patterns table versions` shows them as dropped)."""
    rows = cur.execute(f"SELECT physical FROM {META}.table_versions WHERE name = ? AND "
                       f"version <= ?", [meta.name, meta.version - keep]).fetchall()
    for (physical,) in rows:
        if physical != meta.physical:
            cur.execute(f"DROP TABLE IF EXISTS {qualified(physical)}")


#: DuckDB inserts Arrow data in chunks smaller than its row groups (122,880 rows) at about
#: half the speed (measured: 1M rows in 50,000-row chunks 0.65 s, in bigger chunks 0.33 s).
BIG_CHUNK_ROWS = 122_880


def _in_big_chunks(data: pa.Table) -> pa.Table:
    """``data`` with consecutive small chunks (a node's flushes) combined into big ones."""
    chunks = data.column(0).chunks if data.num_columns else []
    if len(chunks) <= 1 or all(len(c) >= BIG_CHUNK_ROWS for c in chunks[:-1]):
        return data
    groups: list[pa.Table] = []
    start = size = 0
    for chunk in chunks:
        size += len(chunk)
        if size >= BIG_CHUNK_ROWS:
            groups.append(data.slice(start, size).combine_chunks())
            start, size = start + size, 0
    if size:
        groups.append(data.slice(start, size).combine_chunks())
    return pa.concat_tables(groups)


def check_fits(table: str, columns: Mapping[str, str], data: pa.Table) -> None:
    """Refuse values that must not silently change a column (NaN into integers)."""
    for f in data.schema:
        existing = columns.get(f.name)
        if existing is not None and is_nan_into_int(existing, f.type, data.column(f.name)):
            import pyarrow.compute as pc

            at = pc.index(pc.is_nan(data.column(f.name)), True).as_py()
            raise NodeError(
                f"table {table!r}: field {f.name!r} got NaN, but its column holds "
                f"integers; use None for a missing value, or declare the field as float "
                f"with table.init(schema_hints={{{f.name!r}: 'float'}})", record=at,
            )


def _cast(f: Field, kind: str) -> str:
    col = q(f.source or f.name)
    if kind == "json":
        return f"CAST({col} AS JSON)" if f.kind == "json" and f.json_text else f"to_json({col})"
    if kind == "text" and f.kind == "json":
        return col if f.json_text else f"CAST(to_json({col}) AS VARCHAR)"
    if f.kind == kind:
        return col
    return f"CAST({col} AS {SQL_TYPES[kind]})"
