"""Commits on PostgreSQL: concurrent processes, timeouts, staged reads, stream passes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from dataclasses import replace

import pyarrow as pa
import pytest
import sqlglot

from patterns.errors import CommitTimeout, StoreError
from patterns.store.model import Checkpoint, SqlWrite, TableOp
from patterns.store.postgres import PostgresStore
from patterns.store.reads import next_pass
from tests.store.postgres.conftest import append, commit, rows

COMMITS, ROWS = 25, 20


def _committer(url: str, who: str) -> None:
    store = PostgresStore(url)
    try:
        for k in range(COMMITS):
            commit(store, "events", append({"who": [who] * ROWS, "k": list(range(ROWS))}),
                   run_id=f"{who}-{k}", node_id=who)
    finally:
        store.close()


def test_two_processes_committing_keep_ids_in_commit_order(pg_store: PostgresStore,
                                                           postgres_url: str) -> None:
    commit(pg_store, "events", append({"who": ["setup"], "k": [0]}), run_id="setup")
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=_committer, args=(postgres_url, w)) for w in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    got = rows(pg_store, "events")
    assert len(got) == 1 + 2 * COMMITS * ROWS  # no row lost
    with pg_store.read() as view:
        seq_of = dict(view.cur.execute(
            "SELECT run_id, seq FROM patterns_meta.commits").fetchall())
        meta = view.tables.get("events")
    # Rows in id order are rows in commit order: each commit's rows together, in order.
    runs = [f"{r['who']}-{r['k']}" for r in got]
    assert runs[0] == "setup-0"
    order = []
    for r in got[1:]:
        # (the row's commit is the one of its process whose rows it sits among)
        order.append(r["who"])
    seqs = sorted(seq_of.values())
    assert seqs == list(range(1, 2 * COMMITS + 2))  # one sequence, no gaps, no repeats
    ids = [r["patterns_id"] for r in got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    blocks = [order[i:i + ROWS] for i in range(0, len(order), ROWS)]
    assert all(len(set(b)) == 1 for b in blocks)  # a commit's rows are never interleaved
    assert meta is not None and meta.last_id == ids[-1]
    assert pg_store.last_commit() == 2 * COMMITS + 1


def _sleeping(seconds: float) -> TableOp:
    statement = sqlglot.parse_one(f"SELECT pg_sleep({seconds}) IS NULL AS slept",
                                  read="postgres")
    return TableOp("sql", sql=SqlWrite("select", statement, where="slow.sql:{line}",
                                       lines=((1, "SELECT pg_sleep(...)"),)))


def test_a_commit_past_its_timeout_is_cancelled_and_rolled_back(
        pg_store: PostgresStore) -> None:
    commit(pg_store, "t", append({"x": [1]}))
    cp = Checkpoint("slow", "n", state={"saw": 1})
    cp.add("t", TableOp("append", pa.table({"x": [2]})))
    cp.add("slow", _sleeping(30))
    start = time.monotonic()
    with pytest.raises(CommitTimeout, match=r"stopped after 0\.3 s"):
        pg_store.commit(cp, timeout=0.3)
    assert time.monotonic() - start < 10
    assert [r["x"] for r in rows(pg_store, "t")] == [1]
    assert pg_store.table("slow") is None
    with pg_store.read() as view:
        assert view.memory.state("n") == {}
    commit(pg_store, "t", append({"x": [3]}))  # the store works on
    assert [r["x"] for r in rows(pg_store, "t")] == [1, 3]


def test_stop_interrupts_a_commit(pg_store: PostgresStore) -> None:
    stop = threading.Event()
    cp = Checkpoint("slow", "n")
    cp.add("slow", _sleeping(30))
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(CommitTimeout, match="asked to stop"):
        pg_store.commit(cp, stop=stop)
    assert pg_store.table("slow") is None


def test_also_runs_in_the_commit_and_its_failure_rolls_back(pg_store: PostgresStore) -> None:
    def fail(view: object, result: object) -> None:
        raise StoreError("recording the run failed")

    cp = Checkpoint("r", "n", state={"a": 1})
    cp.add("t", TableOp("append", pa.table({"x": [1]})))
    with pytest.raises(StoreError, match="recording"):
        pg_store.commit(cp, also=fail)
    assert pg_store.table("t") is None
    seen: list[int] = []
    pg_store.commit(cp, also=lambda view, result: seen.append(result.seq))
    # (a rolled-back commit may leave a gap in the sequence, as in DuckDB)
    assert seen == [pg_store.last_commit()] and seen[0] >= 1
    with pg_store.read() as view:
        assert view.memory.state("n") == {"a": 1}


def test_with_staged_reads_the_run_s_own_writes_then_throws_them_away(
        pg_store: PostgresStore) -> None:
    commit(pg_store, "t", append({"x": [1]}))
    cp = Checkpoint("r", "n")
    cp.add("t", TableOp("append", pa.table({"x": [2]})))
    cp.add("new", TableOp("append", pa.table({"y": ["a"]})))

    def read(view: object) -> list[object]:
        meta = view.tables.get("t")  # type: ignore[attr-defined]
        total = view.query("SELECT sum(x) AS s FROM t").read_all()  # type: ignore[attr-defined]
        return [r["x"] for r in view.scan(meta).read_all().to_pylist()] + total.column(0).to_pylist()

    assert pg_store.with_staged(cp, read) == [1, 2, 3]
    assert [r["x"] for r in rows(pg_store, "t")] == [1]
    assert pg_store.table("new") is None


def test_a_read_view_is_one_snapshot(pg_store: PostgresStore) -> None:
    commit(pg_store, "t", append({"x": [1]}))
    with pg_store.read() as view:
        meta = view.tables.get("t")
        assert meta is not None
        assert view.tables.count(meta) == 1
        commit(pg_store, "t", append({"x": [2]}))  # committed meanwhile
        assert view.tables.count(meta) == 1
        assert view.scan(meta).read_all().num_rows == 1
    assert [r["x"] for r in rows(pg_store, "t")] == [1, 2]


def test_a_stream_pass_keeps_its_order_when_its_column_widens(pg_store: PostgresStore) -> None:
    commit(pg_store, "t", append({"n": [3, 1, 2]}))
    meta = pg_store.table("t")
    assert meta is not None
    pos = next_pass(meta, None, "n")
    with pg_store.read() as view:
        first = view.stream(meta, pos).read_next_batch().to_pylist()[0]
    commit(pg_store, "t", append({"n": [1.5]}))  # int -> float
    meta = pg_store.table("t")
    assert meta is not None and meta.kinds() == {"n": "float"}
    resumed = replace(pos, started=True, v=first["n"], id=first["patterns_id"])
    with pg_store.read() as view:
        rest = view.stream(meta, resumed).read_all().to_pylist()
    assert [r["n"] for r in rest] == [2.0, 3.0]  # (1.5 came after the pass began)


def _big_committer(url: str) -> None:
    from bench.records import arrow_table

    store = PostgresStore(url)
    commit(store, "events", append(arrow_table(0, 1_000_000).select(["id", "name"])),
           run_id="killed")


def test_a_committer_killed_mid_commit_leaves_nothing_and_no_lock(
        pg_store: PostgresStore, postgres_url: str) -> None:
    import os
    import signal

    import psycopg

    commit(pg_store, "events", append({"id": [-1], "name": ["before"]}))
    proc = multiprocessing.get_context("spawn").Process(target=_big_committer,
                                                        args=(postgres_url,))
    proc.start()
    deadline = time.monotonic() + 60
    with psycopg.connect(postgres_url, autocommit=True) as con:
        while time.monotonic() < deadline:  # until it is copying its rows in
            if con.execute("SELECT 1 FROM pg_stat_activity WHERE query LIKE 'COPY %%' AND "
                           "datname = current_database()").fetchone():
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the committer never began its COPY")
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    commit(pg_store, "events", append({"id": [1], "name": ["after"]}))  # (the lock is free)
    assert [r["name"] for r in rows(pg_store, "events")] == ["before", "after"]
    with pg_store.read() as view:
        assert [c.seq for c in view.commits.since(0)] == [1, pg_store.last_commit()]
