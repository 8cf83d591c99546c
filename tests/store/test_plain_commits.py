"""A DuckDB commit of a few rows runs without DuckDB's optimizer, on a cursor the store keeps
(patterns/store/duckdb_plain.py); everything that reads a table's data, on any cursor, in
any transaction, still gets it: a stream pass still skips the row groups outside its range,
a run record's ``UPDATE`` still finds its row by the pushed-down filter."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from patterns.store.duckdb import DuckDBStore
from patterns.store.duckdb_plain import plain, reads_nothing
from patterns.store.interface import Transaction
from patterns.store.model import (
    Checkpoint,
    CommitResult,
    RunRecord,
    SqlWrite,
    TableOp,
    TableOptions,
)
from patterns.store.reads import next_pass
from patterns.store.repositories import new_id
from patterns.store.small_rows import SMALL_ROWS
from patterns.store.tables import q
from tests.store.contract.conftest import append, meta_of, rows


def _optimizer_on(tx: Transaction) -> bool:
    cur = tx.cursor  # type: ignore[attr-defined]  # (a DuckDB store's view)
    return bool(cur.execute("SELECT current_setting('enable_optimizer')").fetchall()[0][0])


def _scan_filters(cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[str]:
    """The filters DuckDB's plan for ``sql`` pushed into its table scans."""
    (row,) = cur.execute(f"EXPLAIN (FORMAT json) {sql}", params).fetchall()

    def scans(node: dict[str, Any]) -> list[str]:
        own = [str(node["extra_info"].get("Filters", ""))] if node["name"] == "SEQ_SCAN" else []
        return own + [f for child in node.get("children", []) for f in scans(child)]

    return [f for node in json.loads(row[1]) for f in scans(node)]


def _record(run_id: str, status: str = "succeeded") -> RunRecord:
    now = dt.datetime.now(dt.UTC)
    return RunRecord(id=run_id, node_id="n", node_title="n", trigger="manual", status=status,
                     queued_at=now, started_at=now, ended_at=now, attempt=1)


def _one_row(store: DuckDBStore, n: int, also: Any = None) -> CommitResult:
    cp = Checkpoint(run_id=new_id(), node_id="n")
    cp.add("t", TableOp("append", pa.table({"n": [n]})))
    return store.commit(cp, also=also)


def test_a_commit_of_a_few_rows_runs_without_the_optimizer_and_a_pass_still_has_it(
        tmp_path: Path) -> None:
    """The optimizer is off in a one-row commit's transaction; a stream pass read in that
    transaction, and one read afterwards on the same store, push their bounds into the scan
    (the optimizer's work: without it DuckDB filters after reading every row)."""
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        append(store, "t", [{"n": k} for k in range(1000)])  # (the Arrow path: optimized)
        meta = meta_of(store, "t")
        pos = next_pass(meta, None, None)
        seen: dict[str, Any] = {}

        def also(tx: Transaction, result: CommitResult) -> None:
            seen["before"] = _optimizer_on(tx)
            seen["pass"] = [r["n"] for r in tx.stream(meta, pos).read_all().to_pylist()]
            seen["after"] = _optimizer_on(tx)
            sql, params = tx.stream_query(meta, pos)  # type: ignore[attr-defined]
            seen["filters"] = _scan_filters(tx.cursor, sql, params)  # type: ignore[attr-defined]

        _one_row(store, 1000, also)
        assert seen["before"] is False  # (the commit's own statements ran without it)
        assert seen["pass"] == list(range(1000))
        assert seen["after"] is True
        assert any("patterns_id" in f for f in seen["filters"])
        for k in range(3):
            _one_row(store, 1001 + k)
        meta = meta_of(store, "t")
        pos = next_pass(meta, None, None)
        with store.read() as view:
            sql, params = view.stream_query(meta, pos)  # type: ignore[attr-defined]
            assert len(view.stream(meta, pos).read_all()) == 1004
        with store.cursor() as cur:
            filters = _scan_filters(cur, sql, params)
        assert any("patterns_id" in f for f in filters), filters
    finally:
        store.close()


def test_a_run_records_update_in_a_plain_commit_gets_the_optimizer(tmp_path: Path) -> None:
    """The engine's statements in the commit (``also``): an ``INSERT`` of values runs as
    the commit's own do; an ``UPDATE`` (a run record by id, in a big runs table) turns the
    optimizer back on first, and the next commit of a few rows is without it again."""
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        started = new_id()
        with store.transaction() as tx:
            tx.runs.insert(_record(started, "running"))
        states: list[tuple[bool, bool]] = []

        def insert_then_update(tx: Transaction, result: CommitResult) -> None:
            tx.runs.insert(_record(new_id()))
            inserted = _optimizer_on(tx)
            assert tx.runs.update(started, status="succeeded")
            states.append((inserted, _optimizer_on(tx)))

        _one_row(store, 1, insert_then_update)
        _one_row(store, 2, lambda tx, result: states.append((_optimizer_on(tx), False)))
        assert states == [(False, True), (False, False)]
        with store.read() as view:
            run = view.runs.get(started)
            assert run is not None and run.status == "succeeded"
            assert len(view.runs.recent(limit=10)) == 2
        assert rows(store, "t", "n") == [1, 2]
    finally:
        store.close()


def test_a_failed_plain_commit_leaves_nothing_and_the_next_one_commits(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        _one_row(store, 1)

        def fail(tx: Transaction, result: CommitResult) -> None:
            raise RuntimeError("the run's record could not be written")

        with pytest.raises(RuntimeError):
            _one_row(store, 2, fail)
        _one_row(store, 3)
        assert rows(store, "t", "n") == [1, 3]
        with store.read() as view:  # (a sequence's number is not given back: 1 and 3)
            assert [c.table for c in view.commits.since(0)] == ["t", "t"]
    finally:
        store.close()
    reopened = DuckDBStore(tmp_path / "s.duckdb")
    try:
        assert rows(reopened, "t", "n") == [1, 3]
    finally:
        reopened.close()


def test_only_appends_of_a_few_rows_go_without_the_optimizer() -> None:
    def cp(*ops: TableOp, table: str = "t") -> Checkpoint:
        made = Checkpoint(run_id="r", node_id="n")
        for one in ops:
            made.add(table, one)
        return made

    few, more = pa.table({"n": list(range(SMALL_ROWS))}), pa.table({"n": [1]})
    assert plain(cp())  # (state and positions only)
    assert plain(cp(TableOp("append", few)))
    assert plain(cp(TableOp("init", options=TableOptions(schema={"n": "Integer"})),
                    TableOp("append", few)))
    assert not plain(cp(TableOp("append", few), TableOp("append", more)))
    assert not plain(cp(TableOp("upsert", more, unique_on=("n",))))
    assert not plain(cp(TableOp("sql", sql=SqlWrite(action="update", statement=None))))
    assert not plain(cp(TableOp("delete", where="n > 1")))
    assert not plain(cp(TableOp("truncate")))
    assert reads_nothing("INSERT INTO patterns_meta.runs (id, node_id) VALUES (?, ?)")
    assert reads_nothing("insert into patterns_meta.node_state values (?, ?, ?)")
    assert not reads_nothing("INSERT INTO t SELECT * FROM s")
    assert not reads_nothing("INSERT INTO t VALUES ((SELECT max(n) FROM s))")
    assert not reads_nothing("INSERT INTO t VALUES ((FROM s SELECT max(n)))")
    assert not reads_nothing("INSERT INTO t VALUES ((FROM s LIMIT 1))")  # (DuckDB's FROM-first)
    assert not reads_nothing("INSERT INTO t VALUES (1); DELETE FROM s WHERE n > 1")
    assert not reads_nothing("UPDATE patterns_meta.runs SET status = ? WHERE id = ?")
    assert not reads_nothing("DELETE FROM patterns_meta.run_queue WHERE id = ?")
    assert not reads_nothing(f"SELECT {q('n')} FROM t")
