"""A fresh store is ready to use; a store opened again has everything it had, and goes on."""

from __future__ import annotations

from patterns.positions import StreamPosition
from patterns.store.interface import Store
from tests.store.contract.conftest import StoreFactory, append, rows


def test_a_fresh_store_is_empty_and_ready(store: Store) -> None:
    assert store.last_commit() == 0
    with store.read() as view:
        assert view.tables.all() == [] and view.runs.recent() == []
        assert view.queue.items() == [] and view.schedules.all() == {}
        assert view.webhooks.tokens() == {} and view.memory.all_positions() == []
        assert view.commits.since(0) == []
    assert store.capabilities.backend in ("duckdb", "postgresql")
    assert store.capabilities.dialect in ("duckdb", "postgres")


def test_opening_a_store_again_keeps_everything_and_ids_keep_growing(
        store_factory: StoreFactory) -> None:
    store = store_factory()
    first = append(store, "t", [{"n": 1}, {"n": 2}])
    with store.transaction() as tx:
        tx.queue.enqueue("a", "manual")
        tx.memory.set_position("a", "t", StreamPosition(version=1, hi="x"))
        token = tx.webhooks.ensure_token("hook")
    before = rows(store, "t")
    store.close()

    again = store_factory()  # the migrations are applied already: nothing changes
    assert rows(again, "t") == before
    assert again.last_commit() == first.seq
    with again.read() as view:
        assert [i.node_id for i in view.queue.items()] == ["a"]
        assert view.memory.positions("a") == {"t": StreamPosition(version=1, hi="x")}
        assert view.webhooks.tokens() == {"hook": token}
    later = append(again, "t", [{"n": 3}])
    assert later.seq > first.seq
    ids = [r["patterns_id"] for r in rows(again, "t")]
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_a_read_only_store_reads(store_factory: StoreFactory) -> None:
    store = store_factory()
    append(store, "t", [{"n": 1}])
    store.close()
    reader = store_factory(read_only=True)
    assert rows(reader, "t", "n") == [1]
