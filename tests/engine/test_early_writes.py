"""A run's appended rows are inserted while the node goes on, before its checkpoint commits
(patterns/store/duckdb_early.py, docs/store.md): nothing shows before the commit, the rows
commit once, their ids in commit order, and a write from elsewhere in between sends them
the ordinary way."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from pathlib import Path
from typing import Any

import pytest

from patterns import Table
from patterns.store.duckdb_early import PART_ROWS
from patterns.store.model import RunRecord
from patterns.store.tables import qualified
from tests.conftest import wait_for

SEED = """
from patterns import Table

Table("out", "w").append({"n": -1, "name": "seed"})
"""
OTHER = """
from patterns import Table

Table("other", "w").append({"n": 1})
Table("out", "w").append({"n": -2, "name": "other run"})
"""
#: The node the tests run in their own process (``app.sdk``): its file declares its table.
LOAD = """
from patterns import Table

Table("out", "w")
"""
#: More than two row groups: two parts go before the checkpoint, the rest with it.
ROWS = 2 * PART_ROWS + 5_000


def _inserted_early(app: Any) -> int:
    """Rows of the run's staged appends the store holds in its early transaction now."""
    early = app.session._early
    if early is None:
        return 0
    early.settle()  # (the inserts run on a thread of their own)
    return sum(n for n, _ in early.inserted.values())


def _rows(app: Any) -> list[int]:
    return [r["n"] for r in app.rows("out")]


def _ids_in_storage_order(app: Any) -> bool:
    """Each stored row's id greater than the one stored before it (what streams rely on)."""
    meta = app.engine.store.table("out")
    ids = app.engine.store.arrow(f'SELECT "{meta.physical_id}" AS id FROM '
                                 f'{qualified(meta.physical)} ORDER BY rowid'
                                 ).column("id").to_pylist()
    return len(ids) > 1 and all(a < b for a, b in itertools.pairwise(ids))


def _append_two_parts_and_more(app: Any) -> Table:
    """Append :data:`ROWS` records from the test's own node code; two whole row groups of
    them go in while it goes on (the rest waits for the commit)."""
    out = Table("out", "w")
    for i in range(ROWS):
        out.append({"n": i, "name": f"user{i}"})
    out.flush()
    assert _inserted_early(app) == 2 * PART_ROWS
    return out


def test_rows_inserted_before_the_checkpoint_commit_once_in_order_and_not_before(
        app_runner: Any) -> None:
    app = app_runner({"seed.py": SEED, "load.py": LOAD}, ["out"])
    assert app.run_node("seed").status == "succeeded"
    with app.sdk("load"):
        _append_two_parts_and_more(app)
        assert _rows(app) == [-1]  # (a reader sees none of them)
    assert _rows(app) == [-1, *range(ROWS)]
    assert _ids_in_storage_order(app)
    meta = app.engine.store.table("out")
    assert meta.last_id == app.rows("out")[-1]["patterns_id"]
    assert not app.engine.store._early  # (nothing left open)


@pytest.mark.parametrize("between", ["another run's commit", "a run's start record"])
def test_a_write_from_elsewhere_in_between_sends_the_rows_with_the_commit(
        app_runner: Any, between: str) -> None:
    app = app_runner({"seed.py": SEED, "load.py": LOAD, "other.py": OTHER}, ["out", "other"])
    assert app.run_node("seed").status == "succeeded"
    with app.sdk("load"):
        out = _append_two_parts_and_more(app)
        if between == "another run's commit":  # (its rows then come first, ids too)
            done: list[Any] = []
            thread = threading.Thread(target=lambda: done.append(app.run_node("other")))
            thread.start()
            thread.join(120)
            assert done and done[0].status == "succeeded"
        else:
            with app.engine.store.autocommit() as tx:
                tx.runs.insert(RunRecord(id="r-elsewhere", node_id="x", node_title="x",
                                         trigger="manual", status="running",
                                         queued_at=dt.datetime.now(dt.UTC)))
        for i in range(ROWS, ROWS + 10):
            out.append({"n": i, "name": f"user{i}"})
    first = [-1, -2] if between == "another run's commit" else [-1]
    assert _rows(app) == [*first, *range(ROWS + 10)]
    assert _ids_in_storage_order(app)
    # The node's next checkpoints insert at the commit for a while (a busy store).
    assert app.engine.store.early_writes(app.session._staging(), lambda: None) is None


def test_a_cancelled_run_leaves_none_of_its_early_rows(app_runner: Any, tmp_path: Path) -> None:
    marker = tmp_path / "appended"
    long_run = f"""
import pathlib, time
from patterns import Table

out = Table("out", "w")
for i in range({ROWS}):
    out.append({{"n": i, "name": "user%d" % i}})
out.flush()
pathlib.Path({str(marker)!r}).write_text("done")
time.sleep(120)
"""
    app = app_runner({"seed.py": SEED, "long.py": long_run}, ["out"])
    assert app.run_node("seed").status == "succeeded"
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(app.run_node("long")))
    thread.start()
    wait_for(marker.exists, "the node to append its rows", 120)
    store = app.engine.store
    wait_for(lambda: any(early.inserted for early in store._early), "rows to go early", 60)
    assert _rows(app) == [-1]
    (run_id,) = app.engine.running_runs()
    assert app.engine.cancel(run_id, "stopped by the test")
    thread.join(60)
    assert done and done[0].status == "cancelled"
    assert _rows(app) == [-1]
    assert not store._early
    assert app.run_node("seed").status == "succeeded"  # (the store takes commits as before)
    assert _rows(app) == [-1, -1]
