"""Repairing a table's data: delete rows by a SQL predicate, change a column's type.

Each is a new table version (reason ``delete`` / ``alter``) holding the old version's rows
(with their ids) as changed, so ``patterns table versions`` shows it and the old version stays
readable while it is kept. A bad predicate, an unknown column or a value that cannot be cast
is a :class:`NodeError` and changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import duckdb
import sqlglot
import sqlglot.expressions as exp

from patterns.errors import NodeError, PatternsError
from patterns.store.columns import Column, kind_from_hint
from patterns.store.model import ID_MS, TableMeta
from patterns.store.tables import SQL_TYPES, TableWriter, q, qualified

if TYPE_CHECKING:
    from patterns.store.repositories import Connection


def predicate(where: str) -> str:
    """``where`` checked to be one SQL condition (DuckDB syntax), as SQL to paste in."""
    try:
        parsed = sqlglot.parse(f"SELECT 1 FROM t WHERE {where}", read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise NodeError(f"--where {where!r} is not a SQL condition: "
                        f"{str(exc).splitlines()[0]}; write e.g. \"amount < 0\"") from exc
    if len(parsed) != 1 or not isinstance(parsed[0], exp.Select) \
            or parsed[0].args.get("where") is None:
        raise NodeError(f"--where {where!r} must be one SQL condition, e.g. \"amount < 0\"")
    condition = parsed[0].args["where"].this
    return str(condition.sql(dialect="duckdb"))


def count_where(con: Connection, meta: TableMeta, where: str) -> int:
    """How many rows of ``meta``'s current version ``where`` holds for."""
    condition = predicate(where)
    try:
        rows = con.rows(f"SELECT count(*) FROM {qualified(meta.physical)} WHERE {condition}")
    except PatternsError:
        raise
    except Exception as exc:  # (the backend's own error: a column or a type that is wrong)
        message = str(exc).split("\n")[0]
        names = ", ".join(meta.visible_names())
        raise NodeError(f"--where {where!r} does not work on table {meta.name!r}: {message} "
                        f"(its columns: {names})") from exc
    return int(rows[0][0])


def delete_rows(writer: TableWriter, meta: TableMeta, where: str) -> TableMeta:
    """A new version without the rows ``where`` holds for."""
    from patterns.store.duckdb_view import DuckDBConnection

    count_where(DuckDBConnection(writer.cur), meta, where)  # (checks the predicate, naming the columns)
    condition = predicate(where)
    new = writer.new_version(meta, reason="delete")
    stored = ", ".join(q(n) for n in _stored(meta))
    writer.cur.execute(f"INSERT INTO {qualified(new.physical)} ({stored}) SELECT {stored} FROM "
                       f"{qualified(meta.physical)} WHERE ({condition}) IS NOT TRUE "
                       f"ORDER BY {q(meta.physical_id)}")
    return new


def alter_column(writer: TableWriter, meta: TableMeta, column: str, type_name: str
                 ) -> TableMeta:
    """A new version where ``column`` holds ``type_name`` values (each value cast)."""
    existing = meta.column(column)
    if existing is None:
        known = ", ".join(c.name for c in meta.columns) or "none"
        raise NodeError(f"table {meta.name!r} has no column {column!r} to alter; its columns: "
                        f"{known}")
    kind = kind_from_hint(type_name, field=column, table=meta.name)
    target = SQL_TYPES[kind]
    source = q(column)
    if kind == "json":
        cast = f"to_json({source})" if existing.kind != "text" else f"CAST({source} AS JSON)"
    elif existing.kind == "json" and kind == "text":
        cast = f"CAST({source} AS VARCHAR)"
    else:
        cast = f"CAST({source} AS {target})"
        bad = writer.cur.execute(
            f"SELECT {source} FROM {qualified(meta.physical)} WHERE {source} IS NOT NULL AND "
            f"TRY_CAST({source} AS {target}) IS NULL LIMIT 1").fetchall()
        if bad:
            raise NodeError(
                f"table {meta.name!r}: column {column!r} holds {bad[0][0]!r}, which cannot be "
                f"cast to {kind}; nothing changed. Fix or delete such rows first "
                f"(`patterns table delete APP {meta.name} --where ...`)")
    columns = tuple(Column(c.name, kind) if c.name == column else c for c in meta.columns)
    new = writer.new_version(replace(meta, columns=columns), reason="alter")
    names = _stored(meta)
    select = ", ".join(cast if n == column else q(n) for n in names)
    try:
        writer.cur.execute(f"INSERT INTO {qualified(new.physical)} "
                           f"({', '.join(q(n) for n in names)}) SELECT {select} FROM "
                           f"{qualified(meta.physical)} ORDER BY {q(meta.physical_id)}")
    except duckdb.Error as exc:
        raise NodeError(f"table {meta.name!r}: column {column!r} cannot be cast to {kind}: "
                        f"{str(exc).splitlines()[0]}; nothing changed") from exc
    return new


def _stored(meta: TableMeta) -> list[str]:
    """The physical columns of a version, in order."""
    names = [meta.physical_id, ID_MS]
    if meta.created_column:
        names.append(meta.created_column)
    return names + [c.name for c in meta.columns]
