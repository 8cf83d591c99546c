"""SQL nodes' statements that change a table, run natively in PostgreSQL.

The same actions as the DuckDB store's (:mod:`patterns.store.sql_writes`), in the commit's
transaction: statements (sqlglot expressions) are rendered in the ``postgres`` dialect, their
``main."t"`` names pointed at the views in ``public``, and an UPDATE/DELETE at the table's
current physical version. Query results are materialized as temporary tables and never leave
the server; rows they add get their ids by a join with a block of the store's ids.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import sqlglot  # noqa: F401  (whole, first: see patterns.store.sql_writes)
import sqlglot.expressions as exp

from patterns.errors import NodeError
from patterns.store.columns import PARSED_FROM_TEXT, widen
from patterns.store.model import DEFAULT_ID, HIDDEN_ID, SqlWrite, TableMeta
from patterns.store.pg_sql import postgres_text
from patterns.store.postgres.appends import copy_rows
from patterns.store.postgres.migrations import DATA
from patterns.store.postgres.reads import bind
from patterns.store.postgres.tables import SQL_TYPES, PgTableWriter, q, qualified
from patterns.store.sql_writes import _located
from patterns.store.tables import Field, Rows

if TYPE_CHECKING:
    from patterns.store.postgres.tables import Cursor

_names = itertools.count()
_ID_MARK = "~"
_PG_KINDS = {"boolean": "bool", "bigint": "int", "integer": "int", "smallint": "int",
             "double precision": "float", "real": "float", "numeric": "float", "text": "text",
             "character varying": "text", "character": "text", "date": "date",
             "timestamp without time zone": "timestamp",
             "timestamp with time zone": "timestamptz", "time without time zone": "time",
             "json": "json", "jsonb": "json", "bytea": "bytes", "unknown": "text"}


def apply_sql(writer: PgTableWriter, meta: TableMeta, write: SqlWrite
              ) -> tuple[TableMeta, int]:
    import psycopg

    if write.relations:
        from patterns.store.postgres.view import refuse_outside

        refuse_outside(name for name, _ in write.relations)
    try:
        with writer.cur.connection.transaction():  # (a savepoint: an error is the user's)
            return _APPLY[write.action](writer, meta, write)
    except psycopg.errors.QueryCanceled:
        raise
    except psycopg.Error as exc:
        message = "; ".join(line.strip() for line in str(exc).splitlines()
                            if line.strip() and not line.startswith(("LINE ", " ")))
        raise NodeError(_located(write, message)) from exc
    except NodeError as exc:
        raise NodeError(_located(write, str(exc))) from exc


def render(statement: Any) -> str:
    """A statement in PostgreSQL's dialect, its ``main."t"`` tables the views of ``public``."""
    return postgres_text(statement)


def _execute(cur: Cursor, sql: str, params: tuple[Any, ...]) -> None:
    cur.execute(bind(cur.connection, sql, params))  # type: ignore[arg-type]


# ---------------------------------------------------------------------- actions
def _select(writer: PgTableWriter, meta: TableMeta, write: SqlWrite) -> tuple[TableMeta, int]:
    query = write.statement if write.action == "select" else write.statement.expression
    if write.if_not_exists and meta.columns:
        return meta, 0
    rows = _materialize(writer.cur, render(query), write, meta)
    if write.action == "select":
        _check_types(meta, rows.fields, new_version=True)
    meta = writer.fresh_version(meta, reason="sql")
    return add_relation(writer, meta, rows)


def _insert(writer: PgTableWriter, meta: TableMeta, write: SqlWrite) -> tuple[TableMeta, int]:
    statement = write.statement
    target = statement.this
    named = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else None
    rows = _materialize(writer.cur, render(statement.expression), write, meta, platform=False)
    given = [f.name for f in rows.fields]
    existing = [c.name for c in meta.columns]
    if named is not None and len(named) != len(given):
        raise NodeError(f"INSERT into {meta.name!r} names {len(named)} column(s) but its "
                        f"query gives {len(given)}; name as many columns as the query has")
    if named is None and existing:
        if len(given) > len(existing):
            raise NodeError(
                f"INSERT into {meta.name!r} gives {len(given)} values but the table has "
                f"{len(existing)} column(s) ({', '.join(existing)}); list the columns: "
                f"INSERT INTO ... (a, b) SELECT ...")
        named = existing[:len(given)]
    if named is not None:
        unknown = [n for n in named if n not in existing] if existing else []
        if unknown:
            raise NodeError(f"table {meta.name!r} has no column {unknown[0]!r} (its columns: "
                            f"{', '.join(existing)}); add it first with ALTER TABLE ... "
                            f"ADD COLUMN")
        rows = replace(rows, fields=tuple(Field(name, f.kind, f.json_text, source=f.name)
                                          for name, f in zip(named, rows.fields, strict=True)))
    _check_types(meta, rows.fields, new_version=False)
    return add_relation(writer, meta, rows)


def _update(writer: PgTableWriter, meta: TableMeta, write: SqlWrite) -> tuple[TableMeta, int]:
    statement = _on_current_version(write.statement, meta)
    idc = meta.physical_id
    for assignment in statement.expressions:
        if assignment.this.name in (idc, meta.created_column, DEFAULT_ID):
            raise NodeError(f"UPDATE may not set {assignment.this.name!r}: Patterns keeps that "
                            f"column itself (changed rows get new ids)")
    statement.append("expressions", exp.EQ(
        this=exp.column(idc, quoted=True),
        expression=exp.DPipe(this=exp.Literal.string(_ID_MARK),
                             expression=exp.column(idc, quoted=True))))
    _execute(writer.cur, render(statement), write.params)
    changed = int(writer.cur.rowcount)
    if changed <= 0:
        return meta, 0
    ids = _ids_table(writer, changed)
    table = qualified(meta.physical)
    writer.cur.execute(
        f"UPDATE {table} SET {q(idc)} = n.pid FROM (SELECT m.mark, i.pid FROM (SELECT "
        f"{q(idc)} AS mark, row_number() OVER (ORDER BY {q(idc)}) - 1 AS o FROM {table} "
        f"WHERE starts_with({q(idc)}, '{_ID_MARK}')) m JOIN {ids} i ON i.o = m.o) n "
        f"WHERE {table}.{q(idc)} = n.mark")
    return replace(meta, last_id=writer.ids.last()), changed


def _delete(writer: PgTableWriter, meta: TableMeta, write: SqlWrite) -> tuple[TableMeta, int]:
    _execute(writer.cur, render(_on_current_version(write.statement, meta)), write.params)
    return meta, 0


def _truncate(writer: PgTableWriter, meta: TableMeta, write: SqlWrite) -> tuple[TableMeta, int]:
    writer.cur.execute(f"DELETE FROM {qualified(meta.physical)}")
    return meta, 0


def _create(writer: PgTableWriter, meta: TableMeta, write: SqlWrite) -> tuple[TableMeta, int]:
    if write.statement.expression is not None:
        return _select(writer, meta, write)
    if write.if_not_exists and meta.columns:
        return meta, 0
    rows = _defined(writer.cur, write.statement.this.expressions)
    meta = writer.fresh_version(meta, reason="sql")
    return add_relation(writer, meta, rows)


def _add_column(writer: PgTableWriter, meta: TableMeta, write: SqlWrite
                ) -> tuple[TableMeta, int]:
    rows = _defined(writer.cur, write.statement.args["actions"])
    for f in rows.fields:
        if meta.column(f.name) is not None and not write.if_not_exists:
            raise NodeError(f"table {meta.name!r} already has a column {f.name!r}")
    fresh = tuple(f for f in rows.fields if meta.column(f.name) is None)
    return writer.evolve(meta, fresh), 0


_APPLY = {"select": _select, "insert": _insert, "update": _update, "delete": _delete,
          "truncate": _truncate, "create": _create, "add_column": _add_column}


# ---------------------------------------------------------------------- rows from SQL
def add_relation(writer: PgTableWriter, meta: TableMeta, rows: Rows) -> tuple[TableMeta, int]:
    """Add the rows of a temporary relation, with new ids in the relation's order."""
    meta = writer.evolve(meta, rows.fields) if rows.fields else meta
    if rows.count == 0:
        return meta, 0
    ids = _ids_table(writer, rows.count)
    target = [meta.physical_id]
    select = ["i.pid"]
    if meta.created_column:
        target.append(meta.created_column)
        select.append("%s::timestamptz")
    for f in rows.fields:
        column = meta.column(f.name)
        assert column is not None
        target.append(f.name)
        select.append(_cast(f, column.kind))
    writer.cur.execute(
        f"INSERT INTO {qualified(meta.physical)} ({', '.join(q(c) for c in target)}) "  # type: ignore[arg-type]
        f"SELECT {', '.join(select)} FROM (SELECT *, row_number() OVER () - 1 AS __n FROM "
        f"{rows.source}) s JOIN {ids} i ON i.o = s.__n ORDER BY i.o",
        [writer.now] if meta.created_column else [])
    return replace(meta, last_id=writer.ids.last()), rows.count


def _cast(f: Field, kind: str) -> str:
    col = f"s.{q(f.source or f.name)}"
    if kind == "json":
        return f"{col}::jsonb" if f.kind == "json" else f"to_jsonb({col})"
    if f.kind == kind:
        return col
    return f"{col}::{SQL_TYPES[kind]}"


def _ids_table(writer: PgTableWriter, n: int) -> str:
    name = f"__patterns_ids_{next(_names)}"
    writer.cur.execute(f"CREATE TEMP TABLE {name} (o BIGINT, pid TEXT COLLATE \"C\") "
                       f"ON COMMIT DROP")
    rows = pa.table({"o": pa.array(np.arange(n, dtype=np.int64)), "pid": writer.ids.block(n)})
    copy_rows(writer.cur, name, ["o", "pid"], rows, name)
    return name


def _materialize(cur: Cursor, sql: str, write: SqlWrite, meta: TableMeta, *,
                 platform: bool = True) -> Rows:
    bound = bind(cur.connection, sql, write.params)
    cur.execute(f"SELECT * FROM ({bound}) AS q LIMIT 0")  # type: ignore[arg-type]
    names: list[str] = []
    for i, column in enumerate(cur.description or []):
        name = column.name
        if name in names:
            if platform:  # (an INSERT's columns are named by position)
                raise NodeError(f"the query gives two columns named {name!r}; a table's "
                                f"columns need distinct names: name them apart with AS")
            name = f"column{i + 1}"
        names.append(name)
    relation = f"__patterns_sql_{next(_names)}"
    cur.execute(f"CREATE TEMP TABLE {relation} ({', '.join(q(n) for n in names)}) "  # type: ignore[arg-type]
                f"ON COMMIT DROP AS {bound}")
    rows = relation_rows(cur, relation)
    drop = {DEFAULT_ID, HIDDEN_ID, meta.physical_id, meta.created_column}
    if platform:
        rows = replace(rows, fields=tuple(f for f in rows.fields if f.name not in drop))
    return rows


def _defined(cur: Cursor, definitions: list[Any]) -> Rows:
    relation = f"__patterns_sql_{next(_names)}"
    columns = ", ".join(d.sql(dialect="postgres") for d in definitions)
    cur.execute(f"CREATE TEMP TABLE {relation} ({columns}) ON COMMIT DROP")  # type: ignore[arg-type]
    return relation_rows(cur, relation)


def relation_rows(cur: Cursor, relation: str) -> Rows:
    """A temporary table's columns as fields (kinds from PostgreSQL's types), and its size."""
    described = cur.execute(
        "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = "
        "%s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [relation]).fetchall()
    fields = tuple(Field(str(name), _PG_KINDS.get(str(kind), "text"),
                         str(kind) in ("json", "jsonb")) for name, kind in described)
    row = cur.execute(f"SELECT count(*) FROM {relation}").fetchone()  # type: ignore[arg-type]
    return Rows(relation, fields, int(row[0]) if row else 0)


def _check_types(meta: TableMeta, fields: tuple[Field, ...], *, new_version: bool) -> None:
    for f in fields:
        column = meta.column(f.name)
        if column is None or "null" in (f.kind, column.kind):
            continue
        if f.kind == "text" and column.kind in PARSED_FROM_TEXT and not new_version:
            continue
        if widen(column.kind, f.kind) is None:
            what = "the query's" if new_version else "the inserted"
            raise NodeError(
                f"{what} column {f.name!r} is {f.kind}, but table {meta.name!r} holds "
                f"{column.kind} values in it (version {meta.version}); cast it in the query "
                f"(CAST({f.name} AS {SQL_TYPES[column.kind]})), rename it, or start the table "
                f"over with `patterns table reset APP {meta.name}`")


def _on_current_version(statement: Any, meta: TableMeta) -> Any:
    statement = statement.copy()
    target = statement.this
    alias = target.alias or target.name
    physical = exp.Table(this=exp.to_identifier(meta.physical, quoted=True),
                         db=exp.to_identifier(DATA))
    statement.set("this", exp.alias_(physical, alias, table=True, quoted=True))
    return statement
