"""A DuckDB stream pass in id order reads rows as they are stored, with no sort, where the
store knows they lie in id order (appends, upserts, deletes); where ids were given in place
(a SQL UPDATE), in a copied store, or in a store made before the store kept track
(migration 5), passes over those rows sort, and records still come in id order, each once.
A pass that finds new rows reads only their row groups, whatever the table's size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa
import sqlglot

from patterns.positions import StreamPosition
from patterns.sdk._convert import records_to_arrow
from patterns.store import open_store
from patterns.store.duckdb import DuckDBStore
from patterns.store.duckdb_view import DuckDBView
from patterns.store.migrations import META
from patterns.store.model import SqlWrite, TableOp
from patterns.store.reads import next_pass
from tests.store.contract.conftest import append, meta_of, op
from tests.store.test_id_ms import consume

ROW_GROUP = 122_880  # (DuckDB's rows per row group)


class Plan(NamedTuple):
    sorts: bool
    n: list[int]
    scanned: int

    @property
    def brief(self) -> tuple[bool, list[int]]:
        return self.sorts, self.n


def plan(store: DuckDBStore, table: str, position: StreamPosition | None) -> Plan:
    """What the store does for the next pass from ``position``: whether its query sorts,
    how many table rows it scanned (DuckDB's query profile: every row of each row group it
    did not skip), and the ``n`` it delivered."""
    meta = meta_of(store, table)
    pos = next_pass(meta, position, None)
    cur = store.cursor()
    try:
        sql, params = DuckDBView(cur, shared_keys=store.shared_keys).stream_query(meta, pos)
        delivered = [r[0] for r in cur.execute(sql, params).fetchall()]
        cur.execute("SET profiling_mode = 'detailed'")
        (row,) = cur.execute(f"EXPLAIN (ANALYZE, FORMAT json) {sql}", params).fetchall()
    finally:
        cur.close()
    operators: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        operators.append(node)
        for child in node.get("children", []):
            walk(child)

    for node in json.loads(row[1])["operator"]:
        walk(node)
    return Plan(sorts=any(o.get("type") in ("ORDER_BY", "TOP_N") for o in operators),
                n=delivered,
                scanned=sum(int(o.get("rows_scanned", 0)) for o in operators
                            if o.get("type") == "TABLE_SCAN"))


def update(store: DuckDBStore, table: str, sql: str) -> None:
    statement = sqlglot.parse_one(sql, read="duckdb")
    op(store, table, TableOp("sql", sql=SqlWrite("update", statement)))


def test_a_pass_over_appended_upserted_and_deleted_rows_reads_them_as_stored(
        tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.duckdb")
    try:
        assert isinstance(store, DuckDBStore)
        append(store, "t", [{"n": k} for k in range(5)])
        op(store, "t", TableOp("upsert", records_to_arrow([{"n": 2}, {"n": 7}], "t"),
                               unique_on=("n",)))
        op(store, "t", TableOp("delete", where="n = 3"))  # (a new version, copied in order)
        append(store, "t", [{"n": 8}, {"n": 9}])
        first = plan(store, "t", None)
        assert first.brief == (False, [0, 1, 4, 2, 7, 8, 9])
        got, pos = consume(store, "t", None)
        assert got == first.n
        append(store, "t", [{"n": 10}])
        assert plan(store, "t", pos).brief == (False, [10])
    finally:
        store.close()


def test_rows_given_new_ids_in_place_still_come_in_id_order(tmp_path: Path) -> None:
    """A SQL UPDATE gives the rows it changes new ids where they lie: a pass over them
    sorts; a pass over only the rows added after it does not."""
    store = open_store(tmp_path / "store.duckdb")
    try:
        assert isinstance(store, DuckDBStore)
        append(store, "t", [{"n": k} for k in range(5)])
        got, before = consume(store, "t", None, limit=2)
        assert got == [0, 1]
        update(store, "t", "UPDATE main.t SET n = n + 10 WHERE n IN (1, 3)")
        append(store, "t", [{"n": 5}])
        # The stream stopped mid-pass finishes its pass (ids up to 4's), then the changed
        # rows come with their new ids, before the row appended after them.
        assert plan(store, "t", before).n == [2, 4]
        got, pos = consume(store, "t", before)
        assert got == [2, 4]
        again = plan(store, "t", pos)
        assert again.sorts and again.n == [11, 13, 5]
        assert plan(store, "t", None).brief == (True, [0, 2, 4, 11, 13, 5])
        got, pos = consume(store, "t", pos)
        assert got == [11, 13, 5]
        append(store, "t", [{"n": 6}, {"n": 7}])
        assert plan(store, "t", pos).brief == (False, [6, 7])
        # A new version (replace) holds its rows in id order again.
        op(store, "t", TableOp("replace", records_to_arrow([{"n": 20}, {"n": 21}], "t")))
        assert plan(store, "t", pos).brief == (False, [20, 21])
    finally:
        store.close()


def test_a_copied_store_sorts_passes_over_what_it_took_in(tmp_path: Path) -> None:
    from patterns.store.copy import copy_store

    source = open_store(tmp_path / "source.duckdb")
    copy = open_store(tmp_path / "copy.duckdb")
    try:
        assert isinstance(source, DuckDBStore) and isinstance(copy, DuckDBStore)
        append(source, "t", [{"n": k} for k in range(4)])
        update(source, "t", "UPDATE main.t SET n = n + 10 WHERE n = 1")
        copy_store(source, copy)
        first = plan(copy, "t", None)
        assert first.sorts and first.n == [0, 2, 3, 11]
        assert consume(copy, "t", None)[0] == [0, 2, 3, 11]
        pos = consume(copy, "t", None)[1]
        append(copy, "t", [{"n": 4}])
        assert plan(copy, "t", pos).brief == (False, [4])
    finally:
        copy.close()
        source.close()


def test_a_store_made_before_the_order_was_kept_sorts_until_its_next_rows(
        tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = open_store(path)
    try:
        append(store, "t", [{"n": 0}, {"n": 1}])
        update(store, "t", "UPDATE main.t SET n = 10 WHERE n = 0")
        got, pos = consume(store, "t", None)
        assert got == [1, 10]
    finally:
        store.close()
    con = duckdb.connect(str(path))  # (as versions before migration 5 left it)
    try:
        con.execute(f"DROP TABLE {META}.id_order")
        con.execute(f"DELETE FROM {META}.migrations WHERE version = 5")
    finally:
        con.close()
    store = open_store(path)
    try:
        assert isinstance(store, DuckDBStore)
        first = plan(store, "t", None)
        assert first.sorts and first.n == [1, 10]
        append(store, "t", [{"n": 2}])
        assert plan(store, "t", pos).brief == (False, [2])
    finally:
        store.close()


def test_finding_new_rows_reads_only_theirs_whatever_the_table_size(tmp_path: Path) -> None:
    """O(new rows): after tables of 2 and 6 row groups (several commits each), a pass
    finding 10 new rows scans those 10 rows and no more, and does not sort."""
    scanned = []
    for groups in (2, 6):
        store = open_store(tmp_path / f"store{groups}.duckdb")
        try:
            assert isinstance(store, DuckDBStore)
            for start in range(0, groups * ROW_GROUP, 2 * ROW_GROUP):
                column = pa.array(range(start, start + 2 * ROW_GROUP), pa.int64())
                op(store, "t", TableOp("append", pa.table({"n": column})))
            pos = next_pass(meta_of(store, "t"), None, None).finished()
            append(store, "t", [{"n": -k} for k in range(10)])
            found = plan(store, "t", pos)
            assert found.n == [-k for k in range(10)] and not found.sorts
            scanned.append(found.scanned)
        finally:
            store.close()
    assert scanned == [10, 10]
