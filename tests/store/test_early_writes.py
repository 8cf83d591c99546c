"""Rows inserted before their checkpoint commits, at the store (patterns/store/duckdb_early.py):
an engine killed with them uncommitted leaves a store without them that takes commits as
before; rows that would change the table's columns wait for the commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa

from patterns.store.duckdb import DuckDBStore
from patterns.store.duckdb_early import PART_ROWS
from patterns.store.model import Checkpoint, TableOp
from patterns.store.tables import qualified

ROOT = Path(__file__).resolve().parents[2]


def _commit(store: DuckDBStore, run_id: str, data: pa.Table) -> None:
    cp = Checkpoint(run_id, "load")
    cp.add("out", TableOp("append", data))
    store.commit(cp)


def _stored(store: DuckDBStore) -> list[tuple[int, str]]:
    """``out``'s rows as stored (rowid order): n and the row's id."""
    meta = store.table("out")
    assert meta is not None
    rows = store.arrow(f'SELECT n, "{meta.physical_id}" AS id FROM {qualified(meta.physical)} '
                       f"ORDER BY rowid").to_pylist()
    return [(r["n"], r["id"]) for r in rows]


def test_an_engine_killed_with_rows_inserted_early_leaves_none_of_them(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        import pyarrow as pa
        from patterns.store.duckdb import DuckDBStore
        from patterns.store.model import Checkpoint, TableOp

        store = DuckDBStore({str(path)!r})
        seed = Checkpoint("r0", "load")
        seed.add("out", TableOp("append", pa.table({{"n": [-1]}})))
        store.commit(seed)
        cp = Checkpoint("r1", "load")
        cp.add("out", TableOp("append", pa.table({{"n": list(range({3 * PART_ROWS}))}})))
        early = store.early_writes(cp, lambda: None)
        early.advance()
        early.settle()
        assert sum(n for n, _ in early.inserted.values()) == {3 * PART_ROWS}
        print("inserted", flush=True)
        time.sleep(600)
        """)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "inserted"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    store = DuckDBStore(path)
    try:
        assert [n for n, _ in _stored(store)] == [-1]
        _commit(store, "r2", pa.table({"n": [1, 2, 3]}))
        stored = _stored(store)
        assert [n for n, _ in stored] == [-1, 1, 2, 3]
        ids = [i for _, i in stored]
        assert ids == sorted(ids) and len(set(ids)) == 4
    finally:
        store.close()


def test_rows_that_need_a_new_column_wait_for_the_commit(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "store.duckdb")
    try:
        _commit(store, "r0", pa.table({"n": [-1]}))
        cp = Checkpoint("r1", "load")
        n = PART_ROWS + 7
        cp.add("out", TableOp("append", pa.table({"n": list(range(n)),
                                                 "extra": ["x"] * n})))
        early = store.early_writes(cp, lambda: None)
        assert early is not None
        early.advance()
        early.settle()
        assert not early.inserted  # (the part would have added a column: left to the commit)
        store.commit(cp, early=early)
        assert [n for n, _ in _stored(store)] == [-1, *range(n)]
        assert store.arrow('SELECT count(*) AS c FROM main."out" WHERE extra = \'x\'') \
            .column("c").to_pylist() == [n]
        assert not store._early
    finally:
        store.close()


def test_a_dropped_checkpoint_takes_its_early_rows_with_it(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "store.duckdb")
    try:
        _commit(store, "r0", pa.table({"n": [-1]}))
        cp = Checkpoint("r1", "load")
        cp.add("out", TableOp("append", pa.table({"n": list(range(PART_ROWS))})))
        early = store.early_writes(cp, lambda: None)
        assert early is not None
        early.advance()
        early.settle()
        assert early.inserted
        early.close()  # (the run failed: its staging is dropped)
        _commit(store, "r2", pa.table({"n": [5]}))
        assert [n for n, _ in _stored(store)] == [-1, 5]
    finally:
        store.close()


def test_early_rows_another_commit_made_useless_do_not_hold_the_log_back(
        tmp_path: Path) -> None:
    """Once another write commits, a run's early rows can only be thrown away (their
    transaction's snapshot is stale); held open until the run's checkpoint, they kept DuckDB
    from checkpointing, so the write-ahead log grew with every other commit far past its
    limit (a busy server while a long load runs: a log that grows for the load's length)."""
    store = DuckDBStore(tmp_path / "store.duckdb")
    try:
        store.cursor().execute("SET GLOBAL wal_autocheckpoint = '2MB'")  # (a small limit)
        _commit(store, "r0", pa.table({"n": [-1]}))
        cp = Checkpoint("r1", "load")
        cp.add("out", TableOp("append", pa.table({"n": list(range(PART_ROWS + 5))})))
        early = store.early_writes(cp, lambda: None)
        assert early is not None
        early.advance()
        early.settle()
        assert early.inserted  # (the load goes on; other runs commit meanwhile)
        for k in range(30):  # (about 1 MB of log each)
            other = Checkpoint(f"o{k}", "other")
            other.add("other", TableOp("append", pa.table(
                {"s": [f"row {k}-{i}" for i in range(40_000)]})))
            store.commit(other)
        log_bytes = store.wal.stat().st_size if store.wal.exists() else 0
        assert log_bytes < 8 << 20, f"the log holds {log_bytes >> 20} MB"
        store.commit(cp, early=early)  # (the load's checkpoint: its rows, once)
        assert [n for n, _ in _stored(store)] == [-1, *range(PART_ROWS + 5)]
        assert not store._early
    finally:
        store.close()


def test_a_checkpoint_s_first_append_does_not_wait_for_another_commit(tmp_path: Path) -> None:
    """A run's first staged append of a checkpoint asks the store for its early rows
    (``early_writes``); that must not wait for the commit lock, which another run holds
    for as long as its commit or its reading of its own staged rows takes (a big load:
    seconds), else the node's write waits for it (it never did before early rows)."""
    import threading
    import time

    store = DuckDBStore(tmp_path / "store.duckdb")
    try:
        _commit(store, "r0", pa.table({"n": [-1]}))
        big = Checkpoint("r1", "reader")
        big.add("out", TableOp("append", pa.table({"n": list(range(1000))})))
        reading, release = threading.Event(), threading.Event()

        def read(view: object) -> None:
            reading.set()
            release.wait(5)

        other = threading.Thread(target=lambda: store.with_staged(big, read))
        other.start()
        try:
            assert reading.wait(30)  # (the other run holds the commit lock now)
            cp = Checkpoint("r2", "load")
            cp.add("out", TableOp("append", pa.table({"n": [1]})))
            began = time.monotonic()
            early = store.early_writes(cp, lambda: None)
            took = time.monotonic() - began
            assert early is not None
            assert took < 1.0, f"the node's append waited {took:.1f} s for another run"
        finally:
            release.set()
            other.join(30)
        store.commit(cp, early=early)
        assert [n for n, _ in _stored(store)] == [-1, 1]
    finally:
        store.close()
