"""Deleting rows by a condition and changing a column's type: new versions, old rows kept."""

from __future__ import annotations

import pytest

from patterns.errors import NodeError
from patterns.store.model import TableOp
from patterns.store.postgres import PostgresStore
from tests.store.postgres.conftest import append, commit, rows


def test_delete_rows_makes_a_version_without_them(pg_store: PostgresStore) -> None:
    commit(pg_store, "t", append({"amount": [5, -1, 7, -3], "who": ["a", "b", "c", "d"]}))
    before = {r["who"]: r["patterns_id"] for r in rows(pg_store, "t")}
    result = commit(pg_store, "t", TableOp("delete", where="amount < 0"))
    assert result.tables["t"].version == 2
    got = rows(pg_store, "t")
    assert [(r["who"], r["patterns_id"]) for r in got] == [("a", before["a"]),
                                                            ("c", before["c"])]
    with pytest.raises(NodeError, match=r"--where 'nope > 1' does not work on table 't'.*amount"):
        commit(pg_store, "t", TableOp("delete", where="nope > 1"))
    assert len(rows(pg_store, "t")) == 2


def test_alter_column_casts_every_value_or_changes_nothing(pg_store: PostgresStore) -> None:
    commit(pg_store, "t", append({"code": ["1", "2", None]}))
    commit(pg_store, "t", TableOp("alter", alter=("code", "int")))
    meta = pg_store.table("t")
    assert meta is not None and meta.kinds() == {"code": "int"} and meta.version == 2
    assert [r["code"] for r in rows(pg_store, "t")] == [1, 2, None]
    commit(pg_store, "u", append({"code": ["1", "x"]}))
    with pytest.raises(NodeError, match=r"column 'code' cannot be cast to int.*nothing changed"):
        commit(pg_store, "u", TableOp("alter", alter=("code", "int")))
    meta = pg_store.table("u")
    assert meta is not None and meta.kinds() == {"code": "text"} and meta.version == 1
