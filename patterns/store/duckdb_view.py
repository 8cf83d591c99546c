"""A transaction or read view of a DuckDB store: the shared repositories over a DuckDB
cursor, and table data read as Arrow.

DuckDB's errors become the project's here (:class:`~patterns.errors.QueryError`,
:class:`~patterns.errors.DataError`), so nothing above the store catches a driver's error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from patterns.errors import DataError, QueryError
from patterns.positions import StreamPosition
from patterns.store.interface import LeaseRepository, PageRequest
from patterns.store.model import TableMeta
from patterns.store.reads import BATCH_ROWS, EVERY_KEY_SHARED, scan_sql, stream_sql
from patterns.store.repositories import MetadataViews
from patterns.store.sole_leases import SoleLeases

if TYPE_CHECKING:
    from patterns.store.duckdb_plain import Optimizer

#: DuckDB's errors that mean a value does not fit (a type, a cast, a constraint).
DATA_ERRORS = (duckdb.ConversionException, duckdb.BinderException, duckdb.ParserException,
               duckdb.CatalogException, duckdb.InvalidInputException,
               duckdb.ConstraintException)


class DuckDBConnection:
    """A DuckDB cursor as the repositories use it (DuckDB takes ``?`` itself)."""

    def __init__(self, cur: duckdb.DuckDBPyConnection,
                 optimizer: Optimizer | None = None) -> None:
        """``optimizer``: ``cur`` runs without DuckDB's optimizer, turned back on for a
        statement that may read a table (:mod:`patterns.store.duckdb_plain`)."""
        self.cur = cur
        self.optimizer = optimizer

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.optimizer is not None:
            self.optimizer.before(sql)
        if params:
            return self.cur.execute(sql, list(params)).fetchall()
        return self.cur.execute(sql).fetchall()


def first_line(exc: BaseException) -> str:
    return str(exc).split("\n\nLINE ")[0].replace("\n", " ")


class DuckDBView(MetadataViews):
    """The :class:`~patterns.store.interface.Transaction` of a DuckDB store."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, *,
                 shared_keys: str | None = EVERY_KEY_SHARED,
                 cursors: Callable[[], duckdb.DuckDBPyConnection] | None = None,
                 optimizer: Optimizer | None = None) -> None:
        """``shared_keys``: the store's last id that may share its block's key with later
        ids (see :func:`~patterns.store.reads.stream_sql`; by default: any id may).
        ``cursors``: new cursors of the store (pages make orders in the background).
        ``optimizer``: ``cur`` runs without DuckDB's optimizer (a commit of a few rows),
        turned back on before anything may read a table."""
        self.cursor = cur
        self.shared_keys = shared_keys
        self.cursors = cursors
        self.optimizer = optimizer
        #: Each statement sees the latest commit (a read view): a page opens a snapshot.
        self.autocommit = False
        super().__init__(DuckDBConnection(cur, optimizer))
        self.leases: LeaseRepository = SoleLeases()

    def scan(self, meta: TableMeta, *, limit: int | None = None,
             offset: int | None = None) -> pa.RecordBatchReader:
        return self._reader(scan_sql(meta, limit=limit, offset=offset), [])

    def stream(self, meta: TableMeta, position: StreamPosition) -> pa.RecordBatchReader:
        return self._reader(*self.stream_query(meta, position))

    def stream_query(self, meta: TableMeta, position: StreamPosition) -> tuple[str, list[Any]]:
        """The SQL of a pass from ``position``, and its parameters."""
        from patterns.store.tables import stored_in_order

        # (a pass in id order over rows stored in id order needs no sort: its first batch
        # comes at once, and the engine holds no sorted copy of the pass)
        self._optimized()
        ordered = position.order_by is None and stored_in_order(self.cursor, meta, position.lo)
        return stream_sql(meta, position, shared_keys=self.shared_keys,
                          in_storage_order=ordered)

    def query(self, sql: str, params: Sequence[Any] | None = None, *,
              integer_division: bool = False,
              relations: Sequence[tuple[str, pa.Table]] = ()) -> pa.RecordBatchReader:
        """(``integer_division`` and ``relations`` stay on this view's cursor, which is its
        own.)"""
        self._optimized()
        if integer_division:
            self.cursor.execute("SET integer_division = true")
        for name, rows in relations:
            self.cursor.register(name, rows)
        return self._reader(sql, list(params) if params else [], mark_json=True)

    def page(self, meta: TableMeta, ask: PageRequest, id_name: str) -> pa.Table:
        from patterns.store.page_orders import ordered_page
        from patterns.store.pages import page_sql

        sql, params = page_sql(meta, ask, id_name, by_rowid=True)
        self._optimized()
        if self.autocommit:  # (the page's statements see one state of the table)
            self.cursor.execute("BEGIN TRANSACTION")
        try:
            kept = ordered_page(self.cursor, meta, ask, id_name, self.cursors)  # (big: fast)
            if kept is None:
                rel = self.cursor.sql(sql, params=params) if params else self.cursor.sql(sql)
                kept = rel.to_arrow_table()
        except (duckdb.ConversionException, duckdb.BinderException) as exc:
            raise DataError(str(exc).splitlines()[0]) from None
        finally:
            if self.autocommit:
                self.cursor.execute("ROLLBACK")
        return kept

    def _optimized(self) -> None:
        """Before a read of table data: DuckDB's optimizer, if this view's cursor runs
        without it."""
        if self.optimizer is not None:
            self.optimizer.before()

    def _reader(self, sql: str, params: list[Any], *, mark_json: bool = False
                ) -> pa.RecordBatchReader:
        self._optimized()
        try:
            rel = self.cursor.sql(sql, params=params) if params else self.cursor.sql(sql)
            reader = rel.to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as exc:
            raise QueryError(first_line(exc)) from exc
        if not mark_json:
            return reader
        schema = _json_marked(reader.schema, rel)
        if schema is reader.schema:
            return reader
        return pa.RecordBatchReader.from_batches(
            schema, (pa.RecordBatch.from_arrays(b.columns, schema=schema) for b in reader))


def _json_marked(schema: pa.Schema, relation: duckdb.DuckDBPyRelation) -> pa.Schema:
    """``schema`` saying which of a query's columns are JSON (the SDK hands their values
    out parsed, as Postgres drivers do); DuckDB's Arrow export makes them plain text."""
    names = [n for n, t in zip(relation.columns, relation.types, strict=True)
             if str(t) == "JSON"]
    if not names:
        return schema
    return schema.with_metadata({**(schema.metadata or {}),
                                 b"patterns.json_columns": ",".join(names).encode()})
