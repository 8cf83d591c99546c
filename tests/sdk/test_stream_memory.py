"""A node consuming a long stream holds a bounded amount of it, whatever the stream's length:
the batch in hand and one read ahead (the read-ahead thread reads one only when there is
room), the records of one slice of the batch (made just before they are handed out), and
what the engine has sent and the node not yet read (a batch or so: gRPC's window does not
grow with the stream). Each bound is counted here, not timed."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pyarrow as pa
import pytest

from patterns import Table
from patterns.sdk._batch_records import ready_batch, slice_records, slice_rows
from patterns.sdk._read_ahead import read_ahead
from patterns.store.reads import BATCH_ROWS

NODES = {
    "writer.py": 'from patterns import Table\nt = Table("events", "w")\n',
    "reader.py": 'from patterns import Table\nt = Table("events")\n',
}


@pytest.fixture
def app(app_runner: Any) -> Any:
    return app_runner(NODES, ["events"])


def record(i: int) -> dict[str, Any]:
    """A record like the benchmarks': 8 fields, one of them nested (a JSON column)."""
    return {"id": i, "name": f"user{i}", "email": f"user{i}@example.com", "score": i / 10,
            "active": i % 3 == 0, "country": ["NL", "DE", "JP"][i % 3], "visits": i * 7,
            "address": {"city": "Osaka", "zip": str(10000 + i)}}


def test_the_read_ahead_thread_holds_one_item_besides_the_one_in_hand() -> None:
    alive = most = 0

    class Item:
        def __init__(self) -> None:
            nonlocal alive
            alive += 1

        def __del__(self) -> None:
            nonlocal alive
            alive -= 1

    def source() -> Any:
        nonlocal most
        for _ in range(200):
            most = max(most, alive + 1)  # the one about to be read, and all still held
            yield Item()

    taken = 0
    for item in read_ahead(source(), lambda x: x):
        taken += 1
        del item  # (a loop over a stream lets a batch go before it takes the next)
    assert (taken, most) == (200, 2)


def test_a_batch_is_made_into_records_a_slice_at_a_time_with_the_same_records() -> None:
    rows = [record(i) for i in range(10_000)]
    table = pa.Table.from_pylist([{**r, "address": None} for r in rows])
    import json

    texts = pa.array([json.dumps(r["address"]) for r in rows])
    table = table.set_column(7, pa.field("address", pa.string()), texts)
    table = table.append_column("_patterns_id", pa.array([f"id{i:08}" for i in range(10_000)]))
    batch = table.combine_chunks().to_batches()[0].replace_schema_metadata(
        {b"patterns.json_columns": b"address"})
    ready = ready_batch(batch, "_patterns_id")
    step = slice_rows(8)
    assert ready.step == step < 10_000 and ready.slices == -(-10_000 // step)
    made = [slice_records(ready, k) for k in range(ready.slices)]
    assert all(len(part) == step for part in made[:-1])
    assert [r for part in made for r in part] == rows
    assert ready.id_field == "_patterns_id"


def test_a_long_stream_is_held_a_slice_of_records_at_a_time(app: Any) -> None:
    n = BATCH_ROWS + 5_000
    with app.sdk("writer"):
        Table("events", "w").append([record(i) for i in range(n)])
    with app.sdk("reader"):
        records = Table("events").as_stream().consume_records()
        next(records)
        tracemalloc.start()
        try:
            count = 1 + sum(1 for _ in records)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert count == n
    # What a batch of these records takes as Python objects, made at once:
    tracemalloc.start()
    try:
        whole = [record(i) for i in range(BATCH_ROWS)]
        batch_bytes = tracemalloc.get_traced_memory()[0]
        del whole
    finally:
        tracemalloc.stop()
    assert batch_bytes > 30_000_000
    # A slice is 2,048 of them (16,384 values): about a thirtieth; the bound leaves room for
    # the column lists, the JSON text and what the engine's threads allocate meanwhile.
    assert peak < batch_bytes / 5, (peak, batch_bytes)


@pytest.mark.slow
def test_the_engine_sends_a_long_stream_only_a_few_batches_ahead_of_the_node(app: Any) -> None:
    n = 10 * BATCH_ROWS
    with app.sdk("writer"):
        for at in range(0, n, BATCH_ROWS):  # (as Arrow tables: quicker than dicts)
            Table("events", "w").append(pa.Table.from_pylist([record(i) for i in
                                                              range(at, at + BATCH_ROWS)]))
    ahead = 0
    with app.sdk("reader"):
        sent = app.session.rows_read  # (what the engine has read from the store and sent)
        for r in Table("events").as_stream().consume_records():
            if r["id"] % 4096 == 0:
                ahead = max(ahead, sent.get("events", 0) - r["id"])
    # The batch in hand, one read ahead, one on its way, one the engine is writing.
    assert 0 < ahead <= 4 * BATCH_ROWS, ahead / BATCH_ROWS
