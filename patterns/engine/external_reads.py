"""How a run reads the tables it declares that live in an outside database (a storage).

Each such table is fetched at most once per run, whole, as an Arrow table
(:mod:`patterns.engine.storages`), and then read like any table:

- ``read()`` gives its rows;
- SQL (a SQL node, ``read_sql``) sees it under the store's name: the Arrow table is
  registered on the store's view that runs the query, where it shadows ``main."name"``;
- a stream gives its rows in ``order_by`` order, and with ``order_by`` only the rows past
  the last value consumed (so give it a strictly increasing column, as for any stream);
  without ``order_by`` every run reads the whole table once (an outside table has no
  ``patterns_id`` telling new rows from old);
- a write is refused, naming the node, the table and the storage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from patterns.errors import NodeError

if TYPE_CHECKING:
    import pyarrow as pa

    from patterns.engine.storages import ExternalTable

#: The column a stream's position follows (the row's place in the fetched table).
HIDDEN_ID: Final = "_patterns_id"
BATCH_ROWS: Final = 10_000


class ExternalReads:
    def __init__(self, run_id: str, tables: Mapping[str, ExternalTable],
                 rows_read: dict[str, int]) -> None:
        self.run_id = run_id
        self.tables = tables
        self.rows_read = rows_read
        self._fetched: dict[str, pa.Table] = {}

    def data(self, store: str) -> pa.Table:
        """The table's rows (fetched once per run)."""
        if store not in self._fetched:
            self._fetched[store] = self.tables[store].fetch()
        return self._fetched[store]

    def refuse_write(self, node: str, store: str) -> None:
        table = self.tables[store]
        raise NodeError(f"node {node} cannot write table '{store}': it is table "
                        f"'{table.table}' of storage '{table.storage}', an outside database "
                        f"that Patterns only reads; write to a table of the app's own store "
                        f"(a `- table:` without `storage:`) instead")

    def info(self, store: str, sql_name: str) -> dict[str, Any]:
        data = self.data(store)
        return {"exists": True, "version": 1, "record_count": data.num_rows, "schema": None,
                "sql_name": sql_name, "last_id": None}

    def relations(self, stores: Iterable[str]) -> list[tuple[str, pa.Table]]:
        """``(name, rows)`` to register on a cursor for every outside table among
        ``stores``."""
        return [(store, self.data(store)) for store in dict.fromkeys(stores)
                if store in self.tables]

    def read(self, store: str) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        return self._batches(store, self.data(store))

    def stream(self, store: str, position: Mapping[str, Any] | None, order_by: str | None,
               starting_value: Any) -> tuple[dict[str, Any], pa.Schema,
                                              Iterator[pa.RecordBatch]]:
        import pyarrow as pa

        from patterns.store.outside import select

        data = self.data(store)
        pos = dict(position or {})
        same_run = pos.get("run") == self.run_id
        if order_by is not None and order_by not in data.column_names:
            raise NodeError(f"the stream of table '{store}' is ordered by {order_by!r}, which "
                            f"is not a column of it (columns: {', '.join(data.column_names)})")
        numbered = data.append_column(HIDDEN_ID, pa.array(range(data.num_rows), pa.int64()))
        where, params = "", []
        if order_by is not None:
            column = '"' + order_by.replace('"', '""') + '"'
            if pos.get("started") and pos.get("order_by") == order_by:
                where, params = f"WHERE {column} > ?", [pos.get("v")]
            elif starting_value is not None:
                where, params = f"WHERE {column} >= ?", [starting_value]
            order = f"ORDER BY {column}, {HIDDEN_ID}"
        else:
            if same_run and pos.get("done"):
                return {**pos, "empty": True}, *self._batches(store, data.slice(0, 0))
            if same_run and pos.get("started"):
                where, params = f"WHERE {HIDDEN_ID} > ?", [pos.get("id")]
            order = f"ORDER BY {HIDDEN_ID}"
        rows = select(numbered, where, params, order)
        new = {**pos, "run": self.run_id, "order_by": order_by, "external": True,
               "done": False}
        if rows.num_rows == 0:
            return {**new, "empty": True, "done": True}, *self._batches(store, rows)
        return new, *self._batches(store, rows)

    def _batches(self, store: str, data: pa.Table) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        schema = data.schema.with_metadata({b"patterns.json_columns": b"",
                                            b"patterns.id_column": HIDDEN_ID.encode()})
        table = data.replace_schema_metadata(schema.metadata)

        def counted() -> Iterator[pa.RecordBatch]:
            for batch in table.to_batches(BATCH_ROWS):
                self.rows_read[store] = self.rows_read.get(store, 0) + batch.num_rows
                yield batch

        return schema, counted()
