"""Applying SQL statements that change a table, inside a commit transaction (DuckDB).

SQL nodes and ``table.execute_sql`` stage a :class:`~patterns.store.model.SqlWrite` per
statement; the commit applies it here, in the same transaction as the run's other writes,
through the same :class:`~patterns.store.tables.TableWriter` as ``append``:

- ``select`` (a SQL node's bare SELECT, or ``CREATE TABLE t AS SELECT``): the query's rows
  become a new version of the table; a column whose type conflicts with the current
  version is an error;
- ``insert``: the query's rows are appended (with new ids, compatible types widening);
- ``update``: rows change in place and get new ids, so streams deliver them again;
- ``delete`` / ``truncate``: rows go; ``create`` (column definitions) starts a new version
  with those columns; ``add_column`` adds one.

Query results are materialized as temporary tables and never leave DuckDB. Errors name the
user's file and line.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from dataclasses import replace
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import sqlglot  # noqa: F401  (whole, first: its modules import each other, so importing a
import sqlglot.expressions as exp  # part first from two threads at once can fail)

from patterns.errors import NodeError
from patterns.store.columns import PARSED_FROM_TEXT, widen
from patterns.store.migrations import DATA
from patterns.store.model import DEFAULT_ID, HIDDEN_ID, ID_MS, SqlWrite, TableMeta
from patterns.store.tables import (
    SQL_TYPES,
    Field,
    Rows,
    TableWriter,
    q,
    qualified,
    relation_rows,
)

_names = itertools.count()
_ID_MARK = "~"  # prefixes the ids of rows an UPDATE changed, until they get new ones


def apply_sql(writer: TableWriter, meta: TableMeta, write: SqlWrite) -> tuple[TableMeta, int]:
    """Apply one statement to ``meta``'s table; the table's metadata after it and the rows
    it added or changed."""
    if write.integer_division:
        writer.cur.execute("SET integer_division = true")
    for name, rows in write.relations:
        writer.cur.register(name, rows)
    try:
        return _APPLY[write.action](writer, meta, write)
    except duckdb.InterruptException:
        raise
    except duckdb.Error as exc:
        message = _database_message(exc)
        if write.integer_division and "Function with name" in message:  # Postgres SQL
            message += ("; the function has no DuckDB translation: use DuckDB's own (with "
                        "`-- dialect: duckdb` as the first line) or another expression")
        raise NodeError(_located(write, message)) from exc
    except NodeError as exc:
        raise NodeError(_located(write, str(exc))) from exc
    finally:
        for name, _ in write.relations:
            with contextlib.suppress(duckdb.Error):
                writer.cur.unregister(name)
        if write.integer_division:
            with contextlib.suppress(duckdb.Error):
                writer.cur.execute("RESET integer_division")


# ---------------------------------------------------------------------- actions
def _select(writer: TableWriter, meta: TableMeta, write: SqlWrite) -> tuple[TableMeta, int]:
    """The query's rows as a new version (a SQL node's SELECT, CREATE TABLE ... AS)."""
    query = write.statement if write.action == "select" else write.statement.expression
    if write.if_not_exists and meta.columns:
        return meta, 0
    rows = _materialize(writer.cur, query.sql(dialect="duckdb"), write, meta)
    try:
        if write.action == "select":
            _check_types(meta, rows.fields, write, new_version=True)
        meta = writer.fresh_version(meta, reason="sql")
        return writer.add_rows(meta, rows)
    finally:
        _drop(writer.cur, rows.source)


def _insert(writer: TableWriter, meta: TableMeta, write: SqlWrite) -> tuple[TableMeta, int]:
    statement = write.statement
    target = statement.this
    named = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else None
    rows = _materialize(writer.cur, statement.expression.sql(dialect="duckdb"), write, meta,
                        platform=False)
    try:
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
                raise NodeError(
                    f"table {meta.name!r} has no column {unknown[0]!r} (its columns: "
                    f"{', '.join(existing)}); add it first with ALTER TABLE ... ADD COLUMN")
            rows = replace(rows, fields=tuple(
                Field(name, f.kind, f.json_text, source=f.name)
                for name, f in zip(named, rows.fields, strict=True)))
        _check_types(meta, rows.fields, write, new_version=False)
        return writer.add_rows(meta, rows)
    finally:
        _drop(writer.cur, rows.source)


def _update(writer: TableWriter, meta: TableMeta, write: SqlWrite) -> tuple[TableMeta, int]:
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
    changed = _count(writer.cur.execute(statement.sql(dialect="duckdb"), list(write.params)))
    if not changed:
        return meta, 0
    ids = f"__patterns_new_ids_{next(_names)}"
    writer.cur.register(ids, pa.table({"o": pa.array(np.arange(changed, dtype=np.int64)),
                                        "pid": writer.ids.block(changed)}))
    try:
        table = qualified(meta.physical)
        writer.cur.execute(
            f"UPDATE {table} SET {q(idc)} = n.pid, {q(ID_MS)} = ? FROM (SELECT m.mark, i.pid FROM (SELECT "
            f"{q(idc)} AS mark, row_number() OVER (ORDER BY {q(idc)}) - 1 AS o FROM {table} "
            f"WHERE starts_with({q(idc)}, '{_ID_MARK}')) m JOIN {ids} i ON i.o = m.o) n "
            f"WHERE {table}.{q(idc)} = n.mark", [writer.ids.key])
    finally:
        with contextlib.suppress(duckdb.Error):
            writer.cur.unregister(ids)
    last = writer.ids.last()
    assert last is not None  # (a block of ids was just drawn)
    writer.stored_out_of_order(meta, last)  # (the new ids lie where the rows were)
    return replace(meta, last_id=last), changed


def _delete(writer: TableWriter, meta: TableMeta, write: SqlWrite) -> tuple[TableMeta, int]:
    statement = _on_current_version(write.statement, meta)
    writer.cur.execute(statement.sql(dialect="duckdb"), list(write.params))
    return meta, 0


def _truncate(writer: TableWriter, meta: TableMeta, write: SqlWrite) -> tuple[TableMeta, int]:
    writer.cur.execute(f"DELETE FROM {qualified(meta.physical)}")
    return meta, 0


def _create(writer: TableWriter, meta: TableMeta, write: SqlWrite) -> tuple[TableMeta, int]:
    """CREATE TABLE t (columns): a new, empty version with those columns (with IF NOT
    EXISTS, only while the table has no columns)."""
    if write.statement.expression is not None:
        return _select(writer, meta, write)
    if write.if_not_exists and meta.columns:
        return meta, 0
    rows = _defined(writer.cur, write.statement.this.expressions)
    try:
        meta = writer.fresh_version(meta, reason="sql")
        return writer.add_rows(meta, rows)
    finally:
        _drop(writer.cur, rows.source)


def _add_column(writer: TableWriter, meta: TableMeta, write: SqlWrite) -> tuple[TableMeta, int]:
    definitions = write.statement.args["actions"]
    rows = _defined(writer.cur, definitions)
    try:
        for f in rows.fields:
            if meta.column(f.name) is not None and not write.if_not_exists:
                raise NodeError(f"table {meta.name!r} already has a column {f.name!r}")
        fresh = tuple(f for f in rows.fields if meta.column(f.name) is None)
        return writer.add_rows(meta, replace(rows, fields=fresh))
    finally:
        _drop(writer.cur, rows.source)


_APPLY = {"select": _select, "insert": _insert, "update": _update, "delete": _delete,
          "truncate": _truncate, "create": _create, "add_column": _add_column}


# ---------------------------------------------------------------------- helpers
def _materialize(cur: duckdb.DuckDBPyConnection, sql: str, write: SqlWrite, meta: TableMeta,
                 *, platform: bool = True) -> Rows:
    """The rows of a query, as a temporary table of this transaction."""
    params = list(write.params)
    names = cur.sql(sql, params=params).columns if params else cur.sql(sql).columns
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise NodeError(f"the query gives two columns named {name!r}; a table's columns "
                            f"need distinct names: name them apart with AS")
        seen.add(name)
    relation = f"__patterns_sql_{next(_names)}"
    cur.execute(f"CREATE TEMP TABLE {relation} AS {sql}", params)
    rows = relation_rows(cur, relation)
    drop = {DEFAULT_ID, HIDDEN_ID, ID_MS, meta.physical_id, meta.created_column}
    if platform:  # rows copied from another table get this table's own ids
        rows = replace(rows, fields=tuple(f for f in rows.fields if f.name not in drop))
    return rows


def _defined(cur: duckdb.DuckDBPyConnection, definitions: list[Any]) -> Rows:
    relation = f"__patterns_sql_{next(_names)}"
    columns = ", ".join(d.sql(dialect="duckdb") for d in definitions)
    cur.execute(f"CREATE TEMP TABLE {relation} ({columns})")
    return relation_rows(cur, relation)


def _drop(cur: duckdb.DuckDBPyConnection, relation: str) -> None:
    with contextlib.suppress(duckdb.Error):  # fails in an aborted transaction
        cur.execute(f"DROP TABLE IF EXISTS {relation}")


def _check_types(meta: TableMeta, fields: tuple[Field, ...], write: SqlWrite, *,
                 new_version: bool) -> None:
    """A column may widen (int → float, date → timestamp) but not change meaning: inserted
    text for a typed column is cast (and refused by the cast if it does not parse), any
    other kind that does not fit is refused (the rules of
    :mod:`patterns.store.conform`)."""
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
    """A copy of an UPDATE/DELETE whose target is the table's current version (named as
    the user named it, so ``t.col`` still resolves)."""
    statement = statement.copy()
    target = statement.this
    alias = target.alias or target.name
    physical = exp.Table(this=exp.to_identifier(meta.physical, quoted=True),
                         db=exp.to_identifier(DATA))
    statement.set("this", exp.alias_(physical, alias, table=True, quoted=True))
    return statement


def _count(cur: duckdb.DuckDBPyConnection) -> int:
    rows = cur.fetchall()
    return int(rows[0][0]) if rows else 0


def _database_message(exc: duckdb.Error) -> str:
    """DuckDB's message without its pointer into the translated SQL (which the user did not
    write): the user's own line is named instead."""
    text = re.split(r"\n\s*LINE \d+:", str(exc), maxsplit=1)[0]
    return "; ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def _located(write: SqlWrite, message: str) -> str:
    """``message`` at the line of the statement it most likely concerns: the first line
    naming a quoted identifier of the message, else the statement's first line."""
    line = write.lines[0][0] if write.lines else 1
    words = (re.findall(r"(?:column|with name) (\w+)", message)
             + re.findall(r'"([^"]+)"', message) + re.findall(r"'([^'\s]+)'", message))
    for word in words:
        pattern = re.compile(rf"(?<![\w.]){re.escape(word)}(?!\w)", re.IGNORECASE)
        found = next((n for n, text in write.lines if pattern.search(text)), None)
        if found is not None:
            line = found
            break
    return f"{write.where.format(line=line)}: {message}"
