"""An engine's claims on nodes (patterns/engine/claims.py): a checkpoint carrying a lease
that expired and changed hands is refused and rolled back; lost runs are recovered only
once their node's lease has expired; a DuckDB store keeps its single-process behaviour."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from patterns.engine.claims import ClaimLost, Claims, recover_lost_runs
from patterns.engine.engine import Engine
from patterns.store import open_store
from patterns.store.interface import Store
from patterns.store.model import Checkpoint, RunRecord, TableOp

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _checkpoint(node: str) -> Checkpoint:
    cp = Checkpoint(run_id="RUN1", node_id=node)
    cp.add("out", TableOp("append", data=pa.table({"x": [1, 2, 3]})))
    return cp


def _taken_over(store: Store, claims: Claims, node: str) -> None:
    """This engine took the node for half a second and then paused; another took it."""
    with store.transaction() as tx:
        lease = tx.leases.acquire(f"node:{node}", claims.engine_id, 0.5)
    assert lease is not None
    claims.hold(node, lease)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with store.transaction() as tx:
            if tx.leases.acquire(f"node:{node}", "another-engine", 30) is not None:
                return
        time.sleep(0.05)
    raise AssertionError("the lease never expired")


def test_a_checkpoint_with_a_stale_fencing_token_is_refused_and_rolled_back(
        postgres_url: str) -> None:
    store = open_store(postgres_url)
    claims = Claims(store, seconds=60)
    try:
        _taken_over(store, claims, "load")
        fence = claims.fence("load")
        assert fence is not None
        with pytest.raises(ClaimLost, match=r"node load.*another engine took the node over"):
            store.commit(_checkpoint("load"), also=lambda tx, result: fence(tx))
        with store.read() as view:
            assert view.tables.get("out") is None  # nothing of it was committed
        with store.transaction() as tx:
            assert not claims.holds(tx, "load")
    finally:
        claims.close()
        store.close()


def test_lost_runs_are_recovered_only_once_their_lease_has_expired(postgres_url: str) -> None:
    store = open_store(postgres_url)
    try:
        with store.transaction() as tx:
            item = tx.queue.enqueue("load", "upstream")
            assert item is not None and tx.queue.mark_started(item.id, "RUN1")
            assert not tx.queue.mark_started(item.id, "RUN2")  # (taken: by one engine only)
            tx.runs.insert(RunRecord(id="RUN1", node_id="load", node_title="load",
                                     trigger="upstream", status="running", queued_at=NOW,
                                     started_at=NOW))
            assert tx.leases.acquire("node:load", "engine-a", 0.5) is not None
        with store.transaction() as tx:  # engine-a is alive: its run is left alone
            assert recover_lost_runs(tx, "died", NOW) == []
        deadline = time.monotonic() + 10
        lost = []
        while not lost and time.monotonic() < deadline:
            with store.transaction() as tx:
                lost = recover_lost_runs(tx, "died", NOW)
            time.sleep(0.05)
        assert [i.run_id for i in lost] == ["RUN1"]
        with store.read() as view:
            run = view.runs.get("RUN1")
            assert run is not None and (run.status, run.error) == ("failed", "died")
            assert [i.run_id for i in view.queue.items()] == [None]  # it waits again
    finally:
        store.close()


def test_a_duckdb_store_grants_every_claim_and_fences_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.duckdb")
    claims = Claims(store)
    try:
        assert not claims.shared and claims.claim("load") is not None
        assert claims.claim("load") is not None  # (one engine: its own runs take turns)
        assert claims.fence("load") is None
        with store.transaction() as tx:
            assert tx.leases.live() == [] and claims.holds(tx, "load")
    finally:
        claims.close()
        store.close()


def test_a_second_engine_leaves_a_live_engines_runs_alone_and_refuses_its_node(
        app_runner: Any, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATTERNS_STORE", postgres_url)
    first = app_runner({"make.py": "from patterns import Table\n"
                                   "Table('out', 'w').append({'x': 1})\n"}, ["out"])
    engine = first.engine
    # The first engine is running node make (its record says running, it holds the lease).
    lease = engine.claims.claim("make")
    assert lease is not None
    with engine.store.transaction() as tx:
        tx.runs.insert(RunRecord(id="LIVE1", node_id="make", node_title="make",
                                 trigger="manual", status="running", queued_at=NOW,
                                 started_at=NOW))
    second = Engine(first.app)  # another engine opens the same store
    try:
        with second.store.read() as view:
            live = view.runs.get("LIVE1")
            assert live is not None and live.status == "running"  # not ended as lost
        record, _ = second.run_node(first.app.node("make"), "manual")
        assert record.status == "failed" and "running on another engine" in record.error
        engine.claims.drop("make")
        record, _ = second.run_node(first.app.node("make"), "manual")
        assert record.status == "succeeded"
    finally:
        second.close()
