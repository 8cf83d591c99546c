"""A stream batch's records, made a slice at a time, each just before it is handed out.

A batch from the data plane has up to 65,536 rows. Made into dicts all at once, they are
about 1 KB a record for a record of 9 fields (a dict, its values, a nested dict): 65 MB
a batch, far more than the CPU's caches hold, so every record had left them by the time the
node's loop reached it, and again by the time it was freed; the memory, handed back to the
system batch after batch, was faulted in again page by page; and the batch's dicts set off
the garbage collector, which went through them all. Made :func:`slice_rows` rows at a time
(about 16,000 values: 1,820 rows of 9 fields, 2 MB), a slice is still in the caches while
the loop goes through it and when it is freed, the next slice reuses its memory, and no
collection is started by them: 1,512 ns a record made, read and freed became 700 ns
(bench/RESULTS.md, i15-consume). The peak memory of a consuming node is a slice of dicts
and two batches of Arrow, not a batch of dicts.

What can be done ahead without the GIL is done on the read-ahead thread, by
:func:`ready_batch`: the hidden id dropped, each column's way to Python values chosen, and
the JSON columns' texts joined a slice at a time (:mod:`patterns.sdk._json_columns`).
:func:`slice_records` then makes the records of one slice, exactly as ``to_pylist`` would
have made them for the whole batch (:mod:`patterns.sdk._rows`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from patterns.collector import held
from patterns.sdk._json_columns import JoinedJson, joined, parsed
from patterns.sdk._rows import made

if TYPE_CHECKING:
    import pyarrow as pa

#: Values (rows times fields) made per slice: a few MB of Python objects, which stay in the
#: CPU's caches (1,024 to 4,096 rows of 9 fields measured alike, 65,536 twice as slow).
SLICE_VALUES = 16_384
#: Rows per slice at most (a table of one or two columns).
MAX_SLICE_ROWS = 4_096

#: A column's values of one slice: ``convert(k, start, n)``, slice ``k`` being rows
#: ``start`` to ``start + n``.
Convert = Callable[[int, int, int], list[Any]]


def slice_rows(num_fields: int) -> int:
    """Rows per slice of records with ``num_fields`` fields."""
    return max(1, min(MAX_SLICE_ROWS, SLICE_VALUES // max(1, num_fields)))


@dataclass(frozen=True)
class ReadyBatch:
    """A batch made ready by :func:`ready_batch`, to be made into records a slice at a
    time."""

    batch: pa.RecordBatch  # as read: the hidden id (if any) among its columns
    #: The column of ``batch`` the stream's position takes its ids from.
    id_field: str
    names: tuple[str, ...]  # the records' fields, in order
    converts: tuple[Convert, ...]  # their values, one function a field
    step: int  # rows per slice

    @property
    def slices(self) -> int:
        rows: int = self.batch.num_rows
        return -(-rows // self.step)


def ready_batch(batch: pa.RecordBatch, hidden: str) -> ReadyBatch:
    """Arrow's part of making ``batch``'s records (on the read-ahead thread): ``hidden``,
    the column the stream's position is kept by, is left out of them."""
    from patterns.sdk.table import json_columns

    names = batch.schema.names
    shown = [i for i, name in enumerate(names) if name != hidden]
    step = slice_rows(len(shown))
    as_json = set(json_columns(batch.schema))
    converts: list[Convert] = []
    for i in shown:
        column = batch.column(i)
        if names[i] in as_json:
            converts.append(_json(joined(column, step)))
        elif column.null_count == 0 and column.type in _plain_types():
            converts.append(_plain(column))
        else:
            converts.append(_any(column))
    meta = batch.schema.metadata or {}
    id_field = hidden if hidden in names else \
        (meta.get(b"patterns.id_column") or b"patterns_id").decode()
    return ReadyBatch(batch, id_field, tuple(names[i] for i in shown), tuple(converts), step)


def slice_records(ready: ReadyBatch, k: int) -> list[dict[str, Any]]:
    """The records of slice ``k`` of ``ready``'s batch.

    The garbage collector is held off while they are made (thousands of new dicts would
    set it off to rescan them); it runs as usual while node code goes through them."""
    start = k * ready.step
    n = min(ready.step, ready.batch.num_rows - start)
    with held():
        return made(ready.names, [convert(k, start, n) for convert in ready.converts], n)


def _json(ready: JoinedJson) -> Convert:
    return lambda k, start, n: parsed(ready, k)


def _plain(column: pa.Array) -> Convert:
    """64-bit integers, doubles and booleans without a null: through NumPy, which makes the
    same Python values as ``to_pylist`` at a fraction of the cost."""
    return lambda k, start, n: column.slice(start, n).to_numpy(  # type: ignore[no-any-return]
        zero_copy_only=False).tolist()


def _any(column: pa.Array) -> Convert:
    return lambda k, start, n: column.slice(start, n).to_pylist()  # type: ignore[no-any-return]


@functools.cache
def _plain_types() -> frozenset[pa.DataType]:
    import pyarrow as pa

    return frozenset({pa.int64(), pa.float64(), pa.bool_()})


def warm_up() -> None:
    """Make one small batch's records the way a stream's are made, so that a process forked
    after this (a warm worker's run) finds ``orjson`` imported, the JSON loaders chosen and
    the Arrow and NumPy kernels a batch goes through set up: the first stream batch of a
    fresh run cost 3-4 ms more CPU than the next without it (bench/RESULTS.md, i15-pass)."""
    import pyarrow as pa

    batch = pa.RecordBatch.from_pydict(
        {"_patterns_id": ["0"], "n": pa.array([1], pa.int64()), "x": [1.5], "b": [True],
         "s": ["a"], "j": ['{"k": [1]}']},
    ).replace_schema_metadata({b"patterns.json_columns": b"j"})
    ready = ready_batch(batch, "_patterns_id")
    for k in range(ready.slices):
        slice_records(ready, k)
