"""A transaction or read view of a PostgreSQL store: the portable repositories of
:mod:`patterns.store.repositories` over a psycopg cursor, and table data read as Arrow.

The repositories' SQL is written once, with ``?`` placeholders; :class:`PgConnection` turns
them into psycopg's ``%s`` (a literal ``%`` doubled). Only what PostgreSQL does differently
lives here: reads by ``COPY`` (:mod:`.reads`), a page's filter value checked in a savepoint
(a value that does not fit its column is a :class:`~patterns.errors.DataError` and the view
stays usable), and the leases of :mod:`.leases`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from patterns.errors import DataError, QueryError
from patterns.positions import StreamPosition
from patterns.store.interface import LeaseRepository, PageRequest
from patterns.store.model import TableMeta
from patterns.store.postgres import reads
from patterns.store.postgres.leases import Leases
from patterns.store.repositories import MetadataViews

if TYPE_CHECKING:
    import psycopg

    Connection = psycopg.Connection[tuple[Any, ...]]
    Cursor = psycopg.Cursor[tuple[Any, ...]]


class PgConnection:
    """A psycopg cursor as the repositories use it (:class:`patterns.store.repositories.
    Connection`)."""

    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if params:
            self.cur.execute(reads.placeholders(sql), list(params))  # type: ignore[arg-type]
        else:
            self.cur.execute(sql)  # type: ignore[arg-type]
        return self.cur.fetchall() if self.cur.description is not None else []


class PgView(MetadataViews):
    """The :class:`~patterns.store.interface.Transaction` of a PostgreSQL store."""

    def __init__(self, con: Connection) -> None:
        self.con = con
        self.cur = con.cursor()
        super().__init__(PgConnection(self.cur))
        self.leases: LeaseRepository = Leases(self.cur)

    def scan(self, meta: TableMeta, *, limit: int | None = None,
             offset: int | None = None) -> pa.RecordBatchReader:
        return reads.scan(self.con, meta, limit=limit, offset=offset)

    def stream(self, meta: TableMeta, position: StreamPosition) -> pa.RecordBatchReader:
        return reads.stream(self.con, meta, position)

    def query(self, sql: str, params: Sequence[Any] | None = None, *,
              integer_division: bool = False,
              relations: Sequence[tuple[str, pa.Table]] = ()) -> pa.RecordBatchReader:
        # (PostgreSQL divides integers as integers already: ``integer_division`` is its way)
        if relations:
            refuse_outside(name for name, _ in relations)
        return reads.query(self.con, sql, params)

    def page(self, meta: TableMeta, ask: PageRequest, id_name: str) -> pa.Table:
        import psycopg

        from patterns.store.pages import page_sql

        sql, params = page_sql(meta, ask, id_name)
        columns = [*reads.table_columns(meta), (id_name, "text")]
        try:
            with self.con.transaction():  # (a savepoint: a bad value leaves the view usable)
                return reads.as_table(reads.copy_arrow(
                    self.con, reads.bind(self.con, sql, params), columns))
        except psycopg.DataError as exc:
            raise DataError(str(exc).splitlines()[0]) from None


def refuse_outside(names: Iterable[str]) -> None:
    """SQL over tables of outside databases (storages) runs on the DuckDB store only, for now:
    one clear error instead of a query over the wrong table."""
    listed = ", ".join(repr(n) for n in names)
    raise QueryError(f"the tables {listed} live in an outside database (a storage): SQL over "
                     f"them runs on the DuckDB store only for now; read them with "
                     f"`Table(...).read()` in a Python node, or run the app on DuckDB")
