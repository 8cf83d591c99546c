"""What a run starts from — its node's state and positions, its tables' facts — as the store
answers it at once (``store.memory``, ``store.table``: the DuckDB store keeps them from its
own commits instead of a query per run) is always what a read of the store gives: after
commits that change them, after resets from outside (CLI, API, Studio), and after a commit
that failed."""

from __future__ import annotations

import datetime as dt

import pytest

from patterns.positions import StreamPosition
from patterns.sdk._convert import records_to_arrow
from patterns.store.interface import Store, Transaction
from patterns.store.model import Checkpoint, CommitResult, TableOp, TableOptions

from .conftest import StoreFactory, append, meta_of


def _read(store: Store, node: str) -> tuple[dict[str, object], dict[str, StreamPosition]]:
    with store.read() as view:
        return view.memory.memory(node)


def test_state_and_positions_follow_commits_and_resets(store: Store) -> None:
    assert store.memory("n") == ({}, {}) == _read(store, "n")
    when = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    # (values JSON gives back differently: a tuple, a date, an integer key)
    store.commit(Checkpoint(run_id="r1", node_id="n", state={"seen": (1, 2), "at": when, 3: "x"},
                            positions={"t": StreamPosition(version=1, hi="01H", v=5)}))
    assert store.memory("n") == _read(store, "n")
    assert store.memory("n")[0] == {"seen": [1, 2], "at": str(when), "3": "x"}
    # a checkpoint that changes nothing of its memory keeps it; another node's is its own
    store.commit(Checkpoint(run_id="r2", node_id="n"))
    store.commit(Checkpoint(run_id="r3", node_id="other", state={"k": 1}))
    assert store.memory("n") == _read(store, "n")
    assert store.memory("other") == ({"k": 1}, {}) == _read(store, "other")
    # a stream's position dropped, another set; the state emptied
    store.commit(Checkpoint(run_id="r4", node_id="n", state={},
                            positions={"t": None, "u": StreamPosition(version=2, done=True)}))
    assert store.memory("n") == ({}, {"u": StreamPosition(version=2, done=True)}) \
        == _read(store, "n")
    # reset from outside the node's runs, in a write transaction
    with store.transaction() as tx:
        tx.memory.set_state("n", {"set": "outside"})
        tx.memory.reset_positions("n", "u")
    assert store.memory("n") == ({"set": "outside"}, {}) == _read(store, "n")


def test_a_failed_commit_changes_nothing_a_run_starts_from(store: Store) -> None:
    append(store, "t", [{"a": 1}], node="n")
    store.commit(Checkpoint(run_id="r1", node_id="n", state={"v": 1}))
    before_table, before_memory = store.table("t"), store.memory("n")
    bad = Checkpoint(run_id="r2", node_id="n", state={"v": 2},
                     positions={"t": StreamPosition(version=1)},
                     ops={"t": [TableOp("append", records_to_arrow([{"a": 2, "c": 1}], "t"))]})

    def fail(tx: Transaction, result: CommitResult) -> None:  # (after all of it was applied)
        raise RuntimeError("the run's end could not be recorded")

    with pytest.raises(RuntimeError):
        store.commit(bad, also=fail)
    assert store.memory("n") == before_memory == _read(store, "n")
    assert store.table("t") == before_table == meta_of(store, "t")


def test_table_facts_follow_appends_new_versions_and_a_reopened_store(
        store_factory: StoreFactory) -> None:
    store = store_factory()
    assert store.table("t") is None
    append(store, "t", [{"a": 1}])
    assert store.table("t") == meta_of(store, "t")
    append(store, "t", [{"a": 2, "b": "new column"}])
    assert store.table("t") == meta_of(store, "t")
    assert [c.name for c in store.table("t").columns] == ["a", "b"]  # type: ignore[union-attr]
    # (each commit sets only the columns of the table's row that changed: read back after
    # a reopen, the row says what the commits left)
    store.commit(Checkpoint(run_id="r", node_id="n", ops={"t": [TableOp(
        "init", options=TableOptions(unique_on=("a",), schema_hints={"b": "text"}))]}))
    assert store.table("t") == meta_of(store, "t")
    assert store.table("t").unique_on == ("a",)  # type: ignore[union-attr]
    store.close()
    store = store_factory()
    assert store.table("t") == meta_of(store, "t")
    assert store.table("t").unique_on == ("a",)  # type: ignore[union-attr]
    append(store, "t", [{"a": 3, "b": "x"}])
    store.commit(Checkpoint(run_id="r", node_id="n", ops={"t": [TableOp("reset")]}))
    assert store.table("t") == meta_of(store, "t")
    last = meta_of(store, "t")
    store.close()
    assert store_factory().table("t") == last
