"""Checkpoints: all or nothing, ``patterns_id`` in commit order under concurrent writers, a
run reading its own staged writes, versions and upserts."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from patterns.errors import PatternsError
from patterns.positions import StreamPosition
from patterns.sdk._convert import records_to_arrow
from patterns.store.interface import Store
from patterns.store.model import Checkpoint, TableOp
from tests.store.contract.conftest import append, meta_of, op, rows


def test_a_failing_operation_leaves_nothing_of_its_checkpoint(store: Store) -> None:
    append(store, "t", [{"n": 1}])
    before = meta_of(store, "t")
    bad = Checkpoint(run_id="r2", node_id="n", ops={
        "other": [TableOp("append", records_to_arrow([{"x": 1}], "other"))],
        "t": [TableOp("append", records_to_arrow([{"n": 2}], "t")),
              TableOp("delete", where="no_such_column > 0")]},
        state={"seen": 2}, positions={"t": StreamPosition(version=1, hi="x", done=True)})
    with pytest.raises(PatternsError):
        store.commit(bad)
    assert rows(store, "t", "n") == [1]
    assert meta_of(store, "t") == before
    with store.read() as view:
        assert view.tables.get("other") is None
        assert view.memory.memory("n") == ({}, {})
    append(store, "t", [{"n": 3}])  # the store goes on as if nothing happened
    assert rows(store, "t", "n") == [1, 3]


def test_a_transaction_that_raises_keeps_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.queue.enqueue("a", "manual")
        tx.memory.set_state("a", {"k": 1})
        raise RuntimeError("boom")
    with store.read() as view:
        assert view.queue.items() == [] and view.memory.state("a") == {}


def test_ids_grow_in_commit_order_under_concurrent_writers(store: Store) -> None:
    writers, commits, size = 4, 15, 3
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for c in range(commits):
                append(store, "t", [{"w": w, "c": c, "i": i} for i in range(size)],
                       node=f"w{w}")
        except BaseException as exc:  # pragma: no cover (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    found = rows(store, "t")
    assert len(found) == writers * commits * size
    ids = [r["patterns_id"] for r in found]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # strictly increasing
    for w in range(writers):  # each writer's commits in the order it made them
        mine = [(r["c"], r["i"]) for r in found if r["w"] == w]
        assert mine == sorted(mine)
    # each commit's rows sit together: no other commit's ids fall among them
    blocks = [(r["w"], r["c"]) for r in found]
    assert len([k for k, b in enumerate(blocks) if k == 0 or b != blocks[k - 1]]) == \
        writers * commits


def test_a_run_reads_its_own_staged_writes_and_nobody_else_does(store: Store) -> None:
    append(store, "t", [{"n": 1}])
    staged = Checkpoint(run_id="r", node_id="n", ops={
        "t": [TableOp("append", records_to_arrow([{"n": 2}], "t"))],
        "new": [TableOp("append", records_to_arrow([{"m": 9}], "new"))]})

    def read(view: Any) -> tuple[list[Any], list[Any], int]:
        t, new = view.tables.get("t"), view.tables.get("new")
        return ([r["n"] for r in view.scan(t).read_all().to_pylist()],
                [r["m"] for r in view.scan(new).read_all().to_pylist()], view.tables.count(t))

    assert store.with_staged(staged, read) == ([1, 2], [9], 2)
    assert rows(store, "t", "n") == [1]
    with store.read() as view:
        assert view.tables.get("new") is None


def test_upserts_change_rows_in_place_and_give_them_new_ids(store: Store) -> None:
    def upsert(records: list[dict[str, Any]]) -> None:
        op(store, "u", TableOp("upsert", records_to_arrow(records, "u"), ("k",)))

    upsert([{"k": 1, "v": "a"}, {"k": 2, "v": "b"}])
    first = {r["k"]: r["patterns_id"] for r in rows(store, "u")}
    upsert([{"k": 1, "v": "changed"}, {"k": 3, "v": "c"}])
    found = rows(store, "u")
    assert sorted((r["k"], r["v"]) for r in found) == [(1, "changed"), (2, "b"), (3, "c")]
    again = {r["k"]: r["patterns_id"] for r in found}
    assert again[2] == first[2] and again[1] > max(first.values())  # re-delivered to streams


def test_versions_are_kept_as_asked_and_old_ones_stay_readable(store: Store) -> None:
    append(store, "t", [{"n": 1}])
    op(store, "t", TableOp("replace", records_to_arrow([{"n": 2, "extra": "x"}], "t")))
    assert rows(store, "t", "n") == [2]
    with store.read() as view:
        meta = view.tables.get("t")
        assert meta is not None
        versions = view.tables.versions("t")
        assert [v.version for v in versions] == [1, 2] and all(v.available for v in versions)
        old = view.tables.as_of(meta, versions[0])
        assert [r["n"] for r in view.scan(old).read_all().to_pylist()] == [1]
        assert "extra" not in old.visible_names()
    for _ in range(3):
        op(store, "t", TableOp("reset"), keep_versions=2)
    with store.read() as view:
        versions = view.tables.versions("t")
    assert [v.version for v in versions] == [1, 2, 3, 4, 5]
    assert [v.version for v in versions if v.available] == [4, 5]
    assert meta_of(store, "t").version == 5 and rows(store, "t") == []


def test_counts_and_conditions(store: Store) -> None:
    append(store, "t", [{"n": k} for k in range(10)])
    meta = meta_of(store, "t")
    with store.read() as view:
        assert view.tables.count(meta) == 10
        assert view.tables.count(meta, "n >= 7") == 3
    op(store, "t", TableOp("delete", where="n < 5"))
    assert rows(store, "t", "n") == [5, 6, 7, 8, 9]
