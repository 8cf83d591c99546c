"""A store closes while a kept page order is being made for it (patterns.store.page_builds):
DuckDB refuses to close a connection while one of its cursors runs a statement, so the
store stops the order first; a CI run once failed at a test's teardown on this."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb

from patterns.store import open_store, page_builds
from tests.store.contract.conftest import append, meta_of, rows


def test_a_store_closes_while_an_order_is_being_made(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.duckdb")
    append(store, "big", [{"n": i} for i in range(3_000)])
    meta = meta_of(store, "big")
    sorting = threading.Event()

    def slow(chunk: object) -> object:  # (a sort that takes minutes unless interrupted)
        sorting.set()
        time.sleep(0.01)
        return chunk

    store._con.create_function("slow", slow, ["BIGINT"], "BIGINT", type="arrow")
    page_builds.build_later(store.cursor, "closing-store", "SELECT slow(range) AS rowid "
                            "FROM range(100000000) ORDER BY 1", meta, 3_000)
    assert sorting.wait(60), "the order was never begun"
    store.close()  # (raised ResourceInUseException while the sort ran)
    assert page_builds.wait_for_builds(60)
    assert page_builds.kept("closing-store") is None  # (an interrupted sort keeps nothing)
    again = open_store(tmp_path / "store.duckdb")
    try:
        assert [r["n"] for r in rows(again, "big")] == list(range(3_000))
    finally:
        again.close()


def test_an_order_waiting_for_its_turn_never_starts_once_its_store_closes(
        tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.duckdb")
    append(store, "big", [{"n": i} for i in range(10)])
    meta = meta_of(store, "big")
    with page_builds._one_at_a_time:  # (another store's order is being made)
        page_builds.build_later(store.cursor, "waiting", "SELECT rowid FROM big", meta, 10)
        store.close()
    assert page_builds.wait_for_builds(60)
    assert page_builds.kept("waiting") is None
    try:  # the store's connection is closed: nothing ran on it
        store._con.execute("SELECT 1")
    except duckdb.ConnectionException:
        pass
    else:
        raise AssertionError("the store's connection is still open")
