"""DuckDB's checkpoints come when the store is idle, not inside the commit that grows the log
past DuckDB's default, and a checkpoint killed half way loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa

from patterns.store.duckdb import DuckDBStore
from patterns.store.duckdb_checkpoints import IDLE_BYTES
from patterns.store.model import Checkpoint, TableOp
from tests.conftest import wait_for

ROWS = 100_000
COMMITS = 5  # about 25 MB of log: past DuckDB's default of 16 MB


def _rows(k: int) -> pa.Table:
    start = k * ROWS
    return pa.table({"n": pa.array(range(start, start + ROWS), pa.int64()),
                     "s": [f"{i:040x}" for i in range(start, start + ROWS)]})


def _fill(store: DuckDBStore, sizes: list[int]) -> None:
    for k in range(COMMITS):
        store.commit(Checkpoint(run_id=f"r{k}", node_id="filler",
                                ops={"events": [TableOp("append", _rows(k))]}))
        sizes.append(store.wal.stat().st_size if store.wal.exists() else 0)


def _count(file: Path) -> int:
    store = DuckDBStore(file)
    try:
        meta = store.table("events")
        assert meta is not None
        return store.count(meta)
    finally:
        store.close()


def test_the_log_is_checkpointed_once_the_store_is_idle_not_in_a_commit(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "store.duckdb")
    try:
        assert store.checkpoints is not None
        store.checkpoints.idle_seconds = 60.0  # (not idle while the log is filled)
        sizes: list[int] = []
        _fill(store, sizes)
        # No commit folded the log into the file: it only grew, past DuckDB's 16 MB.
        assert sizes == sorted(sizes) and sizes[-1] > 16 << 20
        assert store.checkpoints.taken == 0
        store.checkpoints.idle_seconds = 0.05
        store.commit(Checkpoint(run_id="last", node_id="filler", ops={
            "events": [TableOp("append", pa.table({"n": [-1], "s": ["last"]}))]}))
        wait_for(lambda: store.checkpoints is not None and store.checkpoints.taken == 1,
                 "a checkpoint once the store was idle")
        assert (store.wal.stat().st_size if store.wal.exists() else 0) < IDLE_BYTES
    finally:
        store.close()
    assert _count(tmp_path / "store.duckdb") == COMMITS * ROWS + 1


CHILD = """
import sys
from pathlib import Path

import pyarrow as pa

from patterns.store.duckdb import DuckDBStore
from patterns.store.model import Checkpoint, TableOp
from tests.store.test_idle_checkpoints import _fill

store = DuckDBStore(Path(sys.argv[1]))
store.checkpoints.idle_seconds = 60.0
_fill(store, [])
# a slow checkpoint: DuckDB waits after writing the tables' blocks, before installing them
store.cursor().execute("SET debug_checkpoint_scan_sleep_ms = 5000")
begin = store.checkpoints._checkpoint

def announced():
    print("checkpointing", store.file.stat().st_size, flush=True)
    begin()
    print("checkpointed", flush=True)

store.checkpoints._checkpoint = announced
store.checkpoints.idle_seconds = 0.05
store.commit(Checkpoint(run_id="last", node_id="filler", ops={
    "events": [TableOp("append", pa.table({"n": [-1], "s": ["last"]}))]}))
sys.stdin.read()
"""


def test_a_checkpoint_killed_half_way_loses_nothing(tmp_path: Path) -> None:
    file = tmp_path / "store.duckdb"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD), str(file)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        assert line and line[0] == "checkpointing", line
        before = int(line[1])
        # killed once the checkpoint has written blocks to the file, before it installs them
        wait_for(lambda: file.stat().st_size > before, "the checkpoint writing to the file")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(30)
    assert _count(file) == COMMITS * ROWS + 1
