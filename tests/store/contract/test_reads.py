"""Reads the server and the CLI make: pages of a table, long readers, queries, autocommit."""

from __future__ import annotations

import pytest

from patterns.errors import DataError
from patterns.store.interface import PageRequest, Store
from tests.store.contract.conftest import append, meta_of


def test_pages_sort_filter_and_follow_a_cursor(store: Store) -> None:
    append(store, "t", [{"n": n, "name": f"x{n % 3}"} for n in (5, 1, 4, 2, 3)])
    meta = meta_of(store, "t")
    with store.read() as view:
        first = view.page(meta, PageRequest(sort="n", limit=2), "_id").to_pylist()
        assert [r["n"] for r in first] == [1, 2, 3]  # (one more than asked)
        after = (first[1]["n"], first[1]["_id"])
        second = view.page(meta, PageRequest(sort="n", limit=2, after=after), "_id")
        assert [r["n"] for r in second.to_pylist()] == [3, 4, 5]
        down = view.page(meta, PageRequest(sort="n", descending=True, limit=10), "_id")
        assert [r["n"] for r in down.to_pylist()] == [5, 4, 3, 2, 1]
        found = view.page(meta, PageRequest(where="n", op="gte", value="4"), "_id")
        assert sorted(r["n"] for r in found.to_pylist()) == [4, 5]
        found = view.page(meta, PageRequest(where="name", op="contains", value="X1"), "_id")
        assert sorted(r["n"] for r in found.to_pylist()) == [1, 4]
        with pytest.raises(DataError):
            view.page(meta, PageRequest(where="n", op="eq", value="not a number"), "_id")
        # (the view is still usable after a value that did not fit)
        assert len(view.page(meta, PageRequest(limit=10), "_id")) == 5


def test_a_reader_outlives_the_block_that_opened_it(store: Store) -> None:
    append(store, "t", [{"n": n} for n in range(3)])
    meta = meta_of(store, "t")
    reader = store.open_reader(lambda view: view.scan(meta))
    append(store, "t", [{"n": 9}])  # (a commit while the reader is open)
    assert [r["n"] for r in reader.read_all().to_pylist()] == [0, 1, 2]


def test_queries_and_autocommit_writes(store: Store) -> None:
    append(store, "t", [{"n": 2}, {"n": 3}])
    with store.read() as view:
        sql = f"SELECT sum(n) AS total FROM {store.view_name('t')}"
        assert view.query(sql).read_all().to_pylist() == [{"total": 5}]
    with store.autocommit() as view:
        view.logs.save("run-1", "hello", False, first=True)
    with store.read() as view:
        assert view.logs.get("run-1") == "hello" and view.logs.exists("run-1")
