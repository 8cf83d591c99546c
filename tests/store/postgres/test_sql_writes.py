"""SQL nodes' statements applied natively in PostgreSQL, in the commit's transaction."""

from __future__ import annotations

import pytest
import sqlglot

from patterns.errors import NodeError
from patterns.store.model import SqlWrite, TableOp
from patterns.store.postgres import PostgresStore
from tests.store.postgres.conftest import append, commit, rows


def sql(action: str, text: str, *params: object) -> TableOp:
    statement = sqlglot.parse_one(text, read="postgres")
    lines = tuple(enumerate(text.splitlines(), start=1))
    return TableOp("sql", sql=SqlWrite(action, statement, params=tuple(params),  # type: ignore[arg-type]
                                       where="daily.sql:{line}", lines=lines))


def test_select_makes_a_new_version_from_postgres_sql(pg_store: PostgresStore) -> None:
    commit(pg_store, "orders", append({"who": ["a", "b", "a"], "amount": [5, 7, 9]}))
    commit(pg_store, "totals", sql(
        "select", 'SELECT who, sum(amount)::bigint AS total, 7 / 2 AS half '
                  'FROM public."orders" WHERE amount > %s GROUP BY who ORDER BY who', 4))
    assert [(r["who"], r["total"], r["half"]) for r in rows(pg_store, "totals")] == [
        ("a", 14, 3), ("b", 7, 3)]  # (7 / 2 is 3: PostgreSQL's integer division)
    meta = pg_store.table("totals")
    assert meta is not None and meta.kinds() == {"who": "text", "total": "int", "half": "int"}


def test_insert_update_delete(pg_store: PostgresStore) -> None:
    commit(pg_store, "t", append({"k": [1, 2, 3], "v": ["a", "b", "c"]}))
    before = {r["k"]: r["patterns_id"] for r in rows(pg_store, "t")}
    result = commit(pg_store, "t",
                    sql("insert", "INSERT INTO t (k, v) SELECT 4, 'd'"),
                    sql("update", "UPDATE t SET v = upper(v) WHERE k >= 2"),
                    sql("delete", "DELETE FROM t WHERE k = 3"))
    got = rows(pg_store, "t")
    assert [(r["k"], r["v"]) for r in got] == [(1, "a"), (2, "B"), (4, "D")]
    assert result.rows_added == {"t": 1 + 3}
    ids = {r["k"]: r["patterns_id"] for r in got}
    assert ids[1] == before[1] and ids[2] > before[3]  # (changed rows get new ids)
    assert [r["patterns_id"] for r in got] == sorted(r["patterns_id"] for r in got)


def test_create_and_add_column(pg_store: PostgresStore) -> None:
    commit(pg_store, "t", sql("create", "CREATE TABLE t (a BIGINT, b TEXT)"),
           sql("add_column", "ALTER TABLE t ADD COLUMN c DATE"),
           sql("insert", "INSERT INTO t (a, b, c) VALUES (1, 'x', '2024-01-02')"))
    meta = pg_store.table("t")
    assert meta is not None and meta.kinds() == {"a": "int", "b": "text", "c": "date"}
    assert [r["c"].isoformat() for r in rows(pg_store, "t")] == ["2024-01-02"]


def test_a_failing_statement_names_the_line_and_writes_nothing(pg_store: PostgresStore) -> None:
    commit(pg_store, "t", append({"k": [1]}))
    with pytest.raises(NodeError, match=r"daily\.sql:3: .*nope"):
        commit(pg_store, "t", append({"k": [2]}),
               sql("insert", "INSERT INTO t (k)\nSELECT\n  nope FROM t"))
    assert [r["k"] for r in rows(pg_store, "t")] == [1]
