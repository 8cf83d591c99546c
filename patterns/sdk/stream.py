"""``Stream``: consume a table's records exactly once, across runs.

Where a stream has got to is part of the run's checkpoint: it commits together with the
writes made from the records it delivered, so a failed run re-delivers exactly what it had
not committed. ``order_by`` sorts what each pass delivers (ties broken by ``patterns_id``);
rows committed later, whatever their order value, come in a later pass.
"""

from __future__ import annotations

import operator
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from patterns.positions import StreamPosition
from patterns.sdk._batch_records import ReadyBatch, ready_batch, slice_records
from patterns.sdk._read_ahead import read_ahead

if TYPE_CHECKING:
    import pyarrow as pa

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
        self._batch: pa.RecordBatch | None = None  # the batch being delivered,
        self._rows: Iterator[dict[str, Any]] | None = None  # the iterator over a slice of
        self._end = 0  # its records, and the row of the batch that slice ends before
        self._id_field = "patterns_id"
        #: Set when the loop handing out records must look up: the position was moved
        #: (rollback, rewind, seek) or the run's automatic checkpoint is due (by _Alarm).
        self._attention = False
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
        alarm: _Alarm | None = None
        finished = False  # a pass was finished in this loop
        try:
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
                if alarm is None and not run.offline:
                    alarm = _Alarm(self)
                ahead = read_ahead(batches, _ready)
                try:
                    for ready in ahead:
                        self._batch, self._rows, self._id_field = ready.batch, None, ready.id_field
                        for k in range(ready.slices):
                            records = slice_records(ready, k)
                            # The position is folded from how far this iterator has gone
                            # (see _record_position): the loop below does only what it must
                            # per record.
                            rows = iter(records)
                            self._rows, self._end = rows, k * ready.step + len(records)
                            del records  # (the iterator holds them until the slice is done)
                            for record in rows:
                                yield record
                                # (the caller asked for the next record: this one is done)
                                if self._attention:  # moved, or a checkpoint is due
                                    self._attention = False
                                    if self._generation != generation:
                                        break
                                    if now() >= run.next_auto_checkpoint:
                                        run.auto_checkpoint()
                            if self._generation != generation:
                                break
                            del rows
                            if now() >= run.next_auto_checkpoint:
                                run.auto_checkpoint()
                        if self._generation != generation:
                            break
                        self._record_position()
                        # (this batch goes before the next is taken: the thread reads one
                        # more only then, so two batches at most are held)
                        self._batch, self._rows = None, None
                        del ready
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
        finally:
            if alarm is not None:
                alarm.stop()

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
        i = self._end - operator.length_hint(rows) - 1  # (the last record handed out)
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
        self._attention = True

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


def _ready(batch: pa.RecordBatch) -> ReadyBatch:
    """Arrow's part of making a batch's records (on the read-ahead thread)."""
    return ready_batch(batch, _HIDDEN_ID)


class _Alarm:
    """Raises a stream's ``_attention`` whenever its run's automatic checkpoint is due, so
    the loop handing out records reads a flag per record rather than the clock; the loop
    then checkpoints between two records as before. A thread of its own, while the stream
    is consumed: it sleeps until the checkpoint is due (30 s by default)."""

    def __init__(self, stream: Stream) -> None:
        run, stopped = stream._run, threading.Event()

        def watch() -> None:
            while not stopped.wait(max(0.05, run.next_auto_checkpoint - time.monotonic())):
                if time.monotonic() >= run.next_auto_checkpoint:
                    stream._attention = True

        self._stopped = stopped
        threading.Thread(target=watch, name="patterns-checkpoint-alarm", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()


def _position(doc: Any) -> StreamPosition | None:
    return StreamPosition.from_json(doc) if doc else None
