"""A node consuming a long stream holds a bounded amount of it, whatever the stream's length:
the batch in hand and one read ahead (the read-ahead thread reads one only when there is
room), the records of one slice of the batch (made just before they are handed out), and
what the engine has sent and the node not yet read (a batch or so: gRPC's window does not
grow with the stream). Each bound is counted here, not timed."""

from __future__ import annotations

import threading
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


def test_items_in_hand_are_prepared_in_the_callers_thread_one_at_a_time() -> None:
    # (a stream pass whose only batch came in the channel's answer: no thread to start)
    items = [1, 2, 3]
    threads: set[int] = set()

    def prepare(x: int) -> int:
        threads.add(threading.get_ident())
        return x * 10

    seen = []
    for item in read_ahead(items, prepare):
        seen.append((item, len(items)))  # (each item let go of once it is prepared)
    assert seen == [(10, 2), (20, 1), (30, 0)]
    assert threads == {threading.get_ident()}


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


def held_by_the_sdk() -> int:
    """Bytes of Python objects allocated by the SDK's code (records, their values, the JSON
    parsed) and still held, of those traced since ``tracemalloc.start()``: what other threads
    of this process allocate meanwhile (the engine's, or those an earlier test left behind
    in a pytest-xdist worker) does not count."""
    snapshot = tracemalloc.take_snapshot().filter_traces([
        tracemalloc.Filter(True, "*/patterns/sdk/*"),
        tracemalloc.Filter(True, "<patterns rows>")])  # (the compiled maker of the dicts)
    return sum(stat.size for stat in snapshot.statistics("filename"))


def test_a_long_stream_is_held_a_slice_of_records_at_a_time(app: Any) -> None:
    n = BATCH_ROWS + 5_000
    step = slice_rows(8)
    with app.sdk("writer"):
        Table("events", "w").append([record(i) for i in range(n)])
    with app.sdk("reader"):
        records = Table("events").as_stream().consume_records()
        next(records)
        tracemalloc.start()
        try:
            count, most = 1, 0
            for _ in records:
                count += 1
                if count % step == 1:  # (the first record of a slice: all of it is held)
                    most = max(most, held_by_the_sdk())
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
    # A slice is 2,048 of them (16,384 values): about a thirtieth, and that is what the SDK
    # holds at most (a process-wide peak would count whatever the engine's threads, in
    # this process, allocate at the same time: it failed once under load).
    assert batch_bytes / 100 < most < batch_bytes / 5, (most, batch_bytes)


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
