"""Repairing a table's data in PostgreSQL: delete rows by a SQL predicate, alter a column.

As in the DuckDB store (:mod:`patterns.store.repair`), each is a new version holding the old
version's rows (with their ids) as changed; the predicate is checked to be one condition
(written in DuckDB's or PostgreSQL's syntax, rendered in PostgreSQL's).
"""

from __future__ import annotations

from dataclasses import replace

import sqlglot

from patterns.errors import NodeError
from patterns.store.columns import Column, kind_from_hint
from patterns.store.model import TableMeta
from patterns.store.postgres.tables import SQL_TYPES, PgTableWriter, q, qualified
from patterns.store.repair import predicate


def delete_rows(writer: PgTableWriter, meta: TableMeta, where: str) -> TableMeta:
    import psycopg

    condition = sqlglot.transpile(predicate(where), read="duckdb", write="postgres")[0]
    new = writer.new_version(meta, reason="delete")
    stored = ", ".join(q(n) for n in _stored(meta))
    try:
        with writer.cur.connection.transaction():
            writer.cur.execute(  # type: ignore[arg-type]
                f"INSERT INTO {qualified(new.physical)} ({stored}) SELECT {stored} FROM "
                f"{qualified(meta.physical)} WHERE ({condition}) IS NOT TRUE")
    except psycopg.Error as exc:
        names = ", ".join(meta.visible_names())
        raise NodeError(f"--where {where!r} does not work on table {meta.name!r}: "
                        f"{str(exc).splitlines()[0]} (its columns: {names})") from exc
    return new


def alter_column(writer: PgTableWriter, meta: TableMeta, column: str, type_name: str
                 ) -> TableMeta:
    import psycopg

    existing = meta.column(column)
    if existing is None:
        known = ", ".join(c.name for c in meta.columns) or "none"
        raise NodeError(f"table {meta.name!r} has no column {column!r} to alter; its columns: "
                        f"{known}")
    kind = kind_from_hint(type_name, field=column, table=meta.name)
    source = q(column)
    cast = (f"to_jsonb({source})" if kind == "json" and existing.kind != "text"
            else f"{source}::{SQL_TYPES[kind]}")
    columns = tuple(Column(c.name, kind) if c.name == column else c for c in meta.columns)
    new = writer.new_version(replace(meta, columns=columns), reason="alter")
    names = _stored(meta)
    select = ", ".join(cast if n == column else q(n) for n in names)
    try:
        with writer.cur.connection.transaction():
            writer.cur.execute(  # type: ignore[arg-type]
                f"INSERT INTO {qualified(new.physical)} ({', '.join(q(n) for n in names)}) "
                f"SELECT {select} FROM {qualified(meta.physical)}")
    except psycopg.Error as exc:
        raise NodeError(f"table {meta.name!r}: column {column!r} cannot be cast to {kind}: "
                        f"{str(exc).splitlines()[0]}; nothing changed. Fix or delete such rows "
                        f"first (`patterns table delete APP {meta.name} --where ...`)") from exc
    return new


def _stored(meta: TableMeta) -> list[str]:
    names = [meta.physical_id]
    if meta.created_column:
        names.append(meta.created_column)
    return names + [c.name for c in meta.columns]
