"""``Stream``: consume a table's records exactly once, across runs.

Where a stream has got to is part of the run's checkpoint: it commits together with the
writes made from the records it delivered, so a failed run re-delivers exactly what it had
not committed. ``order_by`` sorts what each pass delivers (ties broken by ``patterns_id``);
rows committed later, whatever their order value, come in a later pass.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from patterns.positions import StreamPosition
from patterns.sdk._read_ahead import read_ahead
from patterns.sdk.table import arrow_records, json_columns

if TYPE_CHECKING:
    import pyarrow as pa

    from patterns.sdk._json_columns import JoinedJson
    from patterns.sdk.table import Table

_HIDDEN_ID = "_patterns_id"


class Stream:
    def __init__(self, table: Table, order_by: str | None = None,
                 starting_value: Any = None) -> None:
        self._table = table
        self._run = table._run
        self._port = table.name
        self._order_by = order_by
        self._starting_value = starting_value
        self._batch: pa.RecordBatch | None = None  # the batch being delivered, and
        self._rows: Iterator[dict[str, Any]] | None = None  # the iterator over its records
        self._id_field = "patterns_id"
        # Any earlier stream on this port hands over its progress: one position per port.
        self._run.adopt_stream(self._port, self)
        self._pos: StreamPosition | None = _position(self._run.positions.get(self._port))
        self._generation = 0  # bumped by rollback/rewind/seek: live iterators restart

    @property
    def order_by_field(self) -> str | None:
        """The field records come in order of: ``order_by``, else the table's monotonic id
        (``add_monotonic_id``, ``patterns_id`` by default), else its ``add_created`` field;
        None when the table has neither (records then come in the order they were
        committed)."""
        if self._order_by:
            return self._order_by
        schema = self._table._info().schema
        if schema is None:
            return "patterns_id"
        return schema.get("id_column") or schema.get("created_column")

    # ------------------------------------------------------------------ consuming
    def consume_records(self, with_metadata: bool = False) -> Iterator[dict[str, Any]]:
        """Every record not yet consumed by this node, in order; then new ones, until none.

        After ``rollback()``, ``rewind()`` or ``seek()`` a running loop carries on from the
        stream's new position."""
        run = self._run
        now = time.monotonic
        finished = False  # a pass was finished in this loop
        while True:
            self._record_position()
            self._batch, self._rows = None, None
            generation = self._generation
            doc, batches = run.client.stream(
                self._port, self._pos.to_json() if self._pos is not None else None,
                self._order_by, self._starting_value)
            self._pos = StreamPosition.from_json(doc)
            if doc.get("empty"):
                self._save()
                return
            if finished:  # (rows came while the pass before was read: hand on what is done)
                run.pass_checkpoint()
            ahead = read_ahead(batches, _joined)
            try:
                for batch, ready in ahead:
                    records = self._records(batch, ready)
                    # The position is folded from how far this iterator has gone (see
                    # _record_position): the loop below does only what it must per record.
                    rows = iter(records)
                    self._batch, self._rows = batch, rows
                    for record in rows:
                        yield record
                        # (the caller asked for the next record: this one is done)
                        if self._generation != generation:
                            break
                        if now() >= run.next_auto_checkpoint:
                            run.auto_checkpoint()
                    if self._generation != generation:
                        break
                    self._record_position()
                    # (this batch's records go before the next batch's are made)
                    self._batch, self._rows = None, None
                    del records, rows
            finally:
                ahead.close()
            if self._generation != generation:
                continue  # the position was moved under the loop: read from there
            self._record_position()
            self._batch, self._rows = None, None
            assert self._pos is not None
            self._pos = self._pos.finished()
            self._save()
            finished = True

    def _records(self, batch: pa.RecordBatch,
                 ready: dict[str, JoinedJson]) -> list[dict[str, Any]]:
        hidden = _HIDDEN_ID in batch.schema.names
        self._id_field = _HIDDEN_ID if hidden else self._id_name(batch)
        # (the hidden id is for the position only: it never becomes a field of the records)
        shown = batch.drop_columns([_HIDDEN_ID]) if hidden else batch
        return arrow_records(shown, json_columns(batch.schema), ready)

    def _id_name(self, batch: pa.RecordBatch) -> str:
        meta = batch.schema.metadata or {}
        raw = meta.get(b"patterns.id_column")
        return raw.decode() if raw else "patterns_id"

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.consume_records()

    @contextmanager
    def consume_with_rollback(self) -> Iterator[Iterator[dict[str, Any]]]:
        """``with stream.consume_with_rollback() as records:`` — checkpoint when the block
        ends normally, roll back to the last checkpoint when it raises."""
        try:
            yield self.consume_records()
        except BaseException:
            self.rollback()
            raise
        self.checkpoint()

    # ------------------------------------------------------------------ position
    def _record_position(self) -> None:
        """Fold the last delivered record into the position (idempotent)."""
        batch, rows = self._batch, self._rows
        if batch is None or rows is None or self._pos is None:
            return
        i = batch.num_rows - operator.length_hint(rows) - 1  # (the last record handed out)
        if i < 0:
            return
        order_by = self._pos.order_by  # the order of the pass being read
        self._pos = self._pos.delivered(batch.column(self._id_field)[i].as_py(),
                                        batch.column(order_by)[i].as_py() if order_by else None)
        self._save()

    def _save(self) -> None:
        self._run.set_position(self._port,
                               self._pos.to_json() if self._pos is not None else None)

    def _rolled_back(self) -> None:
        self._moved(_position(self._run.positions.get(self._port)))

    def _moved(self, pos: StreamPosition | None) -> None:
        self._batch, self._rows = None, None
        self._pos = pos
        self._generation += 1

    def checkpoint(self) -> None:
        """Commit the run so far: this stream's position, every staged write, the state."""
        self._run.checkpoint()

    def rollback(self) -> None:
        """Back to the last checkpoint: the records since then will be delivered again, and
        the writes and state changes made since then are dropped with them."""
        self._run.rollback()

    def rewind(self) -> None:
        """Consume the table from its beginning again."""
        self._moved(None)
        self._starting_value = None
        self._run.set_position(self._port, None)

    def seek(self, value: Any) -> None:
        """Restart from the beginning, delivering only records whose order field is strictly
        greater than ``value``."""
        self._moved(StreamPosition.seek(value))
        self._starting_value = None
        self._save()


def _joined(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, dict[str, JoinedJson]]:
    """A batch and its JSON columns joined, ready to parse (Arrow's part, on the read-ahead
    thread)."""
    from patterns.sdk._json_columns import joined

    return batch, {col: joined(batch.column(col)) for col in json_columns(batch.schema)}


def _position(doc: Any) -> StreamPosition | None:
    return StreamPosition.from_json(doc) if doc else None
