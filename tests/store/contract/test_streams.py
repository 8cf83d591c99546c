"""Stream passes: new rows only, in order, exactly once; a new version starts over."""

from __future__ import annotations

from typing import Any

from patterns.positions import StreamPosition
from patterns.sdk._convert import records_to_arrow
from patterns.store.interface import Store
from patterns.store.model import Checkpoint, TableOp
from patterns.store.reads import next_pass, pass_is_empty
from tests.store.contract.conftest import append, meta_of, op


def consume(store: Store, position: StreamPosition | None, order_by: str | None = None,
            limit: int | None = None) -> tuple[list[dict[str, Any]], StreamPosition]:
    """One pass from ``position`` (at most ``limit`` rows), and where it got to."""
    meta = meta_of(store, "t")
    pos = next_pass(meta, position, order_by)
    if pass_is_empty(pos):
        return [], pos.finished()
    with store.read() as view:
        found = view.stream(meta, pos).read_all().to_pylist()
    if limit is not None and len(found) > limit:
        found = found[:limit]
        last = found[-1]
        return found, pos.delivered(last["patterns_id"],
                                    last[order_by] if order_by else None)
    return found, pos.finished()


def test_each_pass_delivers_the_new_rows_once_in_commit_order(store: Store) -> None:
    append(store, "t", [{"n": 1}, {"n": 2}])
    append(store, "t", [{"n": 3}])
    got, pos = consume(store, None)
    assert [r["n"] for r in got] == [1, 2, 3]
    assert consume(store, pos)[0] == []
    append(store, "t", [{"n": 4}, {"n": 5}])
    got, pos = consume(store, pos)
    assert [r["n"] for r in got] == [4, 5]


def test_a_pass_stopped_midway_goes_on_from_the_last_row(store: Store) -> None:
    append(store, "t", [{"n": k} for k in range(6)])
    got, pos = consume(store, None, limit=2)
    assert [r["n"] for r in got] == [0, 1] and not pos.done
    stored = StreamPosition.from_json(pos.to_json())  # as a checkpoint keeps it
    got, pos = consume(store, stored)
    assert [r["n"] for r in got] == [2, 3, 4, 5]


def test_order_by_sorts_a_pass_and_late_rows_come_in_the_next(store: Store) -> None:
    append(store, "t", [{"ts": 30}, {"ts": 10}, {"ts": 20}])
    got, pos = consume(store, None, order_by="ts")
    assert [r["ts"] for r in got] == [10, 20, 30]
    append(store, "t", [{"ts": 5}])  # committed late, with an earlier value
    got, pos = consume(store, pos, order_by="ts")
    assert [r["ts"] for r in got] == [5]


def test_a_new_version_starts_the_stream_over(store: Store) -> None:
    append(store, "t", [{"n": 1}])
    _, pos = consume(store, None)
    op(store, "t", TableOp("replace", records_to_arrow([{"n": 7}, {"n": 8}], "t")))
    got, pos = consume(store, pos)
    assert [r["n"] for r in got] == [7, 8] and pos.version == meta_of(store, "t").version


def test_positions_commit_with_the_rows_they_led_to(store: Store) -> None:
    append(store, "t", [{"n": 1}])
    _, pos = consume(store, None)
    store.commit(Checkpoint(
        run_id="r", node_id="reader", positions={"t": pos}, ops={
            "out": [TableOp("append", records_to_arrow([{"m": 1}], "out"))]}))
    with store.read() as view:
        assert view.memory.positions("reader") == {"t": pos}
