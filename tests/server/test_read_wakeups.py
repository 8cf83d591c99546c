"""A node is not woken by rows its run already read, and always by rows it did not.

Real node processes under the server's scheduler. The reading node stops at a chosen point
(in its first pass, or after its stream's last pass) until the test has committed more rows
to its input, so each interleaving is made, not hoped for by timing.
"""

from __future__ import annotations

import contextlib
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from patterns.engine.engine import Engine
from patterns.engine.reactive import with_new_rows
from patterns.engine.scheduler import Scheduler
from patterns.graph.loader import load_app
from patterns.store.model import Checkpoint, TableOp
from tests.conftest import wait_for
from tests.server.conftest import write_app

GRAPH = """
title: Wakeups
functions:
  - node_file: first.py
    id: first001
    trigger: manual
  - node_file: more.py
    id: more0001
    trigger: manual
  - node_file: relay.py
    id: relay001
stores:
  - table: events
  - table: out
"""

RELAY = """
import time
from pathlib import Path
from patterns import Table

HERE = Path({here!r})


def hold(name):
    # at a point the test chose: say so, and go on once the test says go
    if (HERE / f"hold_{{name}}").exists():
        (HERE / f"hold_{{name}}").unlink()
        (HERE / f"at_{{name}}").write_text("x")
        deadline = time.monotonic() + 60
        while not (HERE / f"go_{{name}}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)


out = Table("out", "w")
for r in Table("events").as_stream().consume_records():
    out.append({{"n": r["n"]}})
    hold("in_pass")
hold("after_pass")
"""


class Served:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.engine = Engine(load_app(root))
        self.scheduler = Scheduler(self.engine)
        self.scheduler.start()

    def queue(self, node_id: str) -> None:
        with self.engine.store.transaction() as tx:
            tx.queue.enqueue(node_id, "manual")
        self.scheduler.notify()

    def runs(self, node_id: str) -> list[Any]:
        with self.engine.store.read() as view:
            return [r for r in reversed(view.runs.recent(None, 1000)) if r.node_id == node_id]

    def succeeded(self, node_id: str, count: int) -> list[Any]:
        done = [r for r in self.runs(node_id) if r.status == "succeeded"]
        return done if len(done) >= count else []

    def idle(self) -> bool:
        with self.engine.store.read() as view:
            waiting = view.queue.items()
        return not waiting and not self.scheduler._busy

    def out(self) -> list[int]:
        with self.engine.store.read() as view:
            meta = view.tables.get("out")
            return [] if meta is None else sorted(view.scan(meta).read_all().column("n").to_pylist())

    def stop(self) -> None:
        self.scheduler.stop(drain_seconds=5)
        self.engine.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    root = write_app(tmp_path / "app", GRAPH, {
        "first.py": """
            from patterns import Table
            Table("events", "w").append([{"n": 0}, {"n": 1}, {"n": 2}])
        """,
        "more.py": """
            from patterns import Table
            Table("events", "w").append([{"n": 10}, {"n": 11}])
        """,
        "relay.py": textwrap.dedent(RELAY.format(here=str(tmp_path))),
    })
    holder = Served(root)
    yield holder
    with contextlib.suppress(Exception):
        holder.stop()


def _woken(served: Served) -> list[Any]:
    """What the scheduler's look for out-of-date nodes finds for the relay (its decision)."""
    relay = served.engine.app.node("relay")
    with served.engine.store.read() as view:
        return with_new_rows(view, [relay], view.runs.seen_commits(succeeded_only=False))


def test_rows_a_running_run_read_in_a_later_pass_wake_no_second_run(
        served: Served, tmp_path: Path) -> None:
    (tmp_path / "hold_in_pass").write_text("x")
    served.queue("first001")  # its rows wake the relay, which stops in its first pass
    wait_for(lambda: (tmp_path / "at_in_pass").exists(), "the relay in its first pass")
    served.queue("more0001")  # rows while the relay runs; the end of `more` queues it again
    wait_for(lambda: served.succeeded("more0001", 1), "more's run")
    with served.engine.store.read() as view:  # (queued while it runs, as before)
        assert [i.trigger for i in view.queue.items(started=False)
                if i.node_id == "relay001"] == ["upstream"]
    (tmp_path / "go_in_pass").write_text("x")
    (run,) = wait_for(lambda: served.succeeded("relay001", 1), "the relay's run")
    wait_for(served.idle, "the scheduler to have nothing to do")
    # It read the rows of `more` in its second pass: one run for both commits, every row
    # once, and nothing makes it out of date.
    assert served.out() == [0, 1, 2, 10, 11]
    assert run.rows_read == {"events": 5}
    assert [r.status for r in served.runs("relay001")] == ["succeeded"]
    last_event = served.engine.store.arrow(
        "SELECT max(seq) AS s FROM patterns_meta.commits WHERE table_name = 'events'")
    assert run.seen_commit >= last_event.column("s")[0].as_py()
    assert _woken(served) == []


def test_rows_committed_after_the_last_pass_of_a_running_run_start_another(
        served: Served, tmp_path: Path) -> None:
    (tmp_path / "hold_after_pass").write_text("x")
    served.queue("first001")
    wait_for(lambda: (tmp_path / "at_after_pass").exists(), "the relay after its last pass")
    served.queue("more0001")  # lands while the relay runs, after its stream's last pass
    wait_for(lambda: served.succeeded("more0001", 1), "more's run")
    (tmp_path / "go_after_pass").write_text("x")
    runs = wait_for(lambda: served.succeeded("relay001", 2), "a second run of the relay")
    assert [r.rows_read for r in runs] == [{"events": 3}, {"events": 2}]
    wait_for(lambda: served.out() == [0, 1, 2, 10, 11], "every row in out")


def test_a_commit_from_outside_a_run_after_the_last_pass_starts_another(
        served: Served, tmp_path: Path) -> None:
    """As a webhook's commit does: no run's end queues the reader; the scheduler's look for
    out-of-date nodes, once the relay's run is over, must find it."""
    (tmp_path / "hold_after_pass").write_text("x")
    served.queue("first001")
    wait_for(lambda: (tmp_path / "at_after_pass").exists(), "the relay after its last pass")
    served.engine.store.commit(Checkpoint(run_id="outside", node_id="hook0001", ops={
        "events": [TableOp("append", pa.table({"n": [20]}))]}))
    served.scheduler.notify(committed=True)
    (tmp_path / "go_after_pass").write_text("x")
    runs = wait_for(lambda: served.succeeded("relay001", 2), "a second run of the relay")
    assert [r.rows_read for r in runs] == [{"events": 3}, {"events": 1}]
    assert served.out() == [0, 1, 2, 20]


def _commit_outside(engine: Engine, n: int) -> None:
    """Rows from outside any run of the relay, as a webhook commits them."""
    engine.store.commit(Checkpoint(run_id=f"outside{n}", node_id="hook0001", ops={
        "events": [TableOp("append", pa.table({"n": [n]}))]}))


def _index_woken(served: Served) -> list[str]:
    """What the scheduler's look, from what it keeps in memory, finds for the relay."""
    wakes = served.scheduler._wakes
    assert wakes is not None  # (a store of one process)
    return [n.id for n in wakes.stale([served.engine.app.node("relay")])]


def test_across_restarts_only_rows_the_reader_has_not_read_wake_it(
        served: Served, tmp_path: Path) -> None:
    """The scheduler keeps what wakes a node in memory (patterns/engine/wake_index.py),
    loaded from the store when it starts: a reader that read everything is not run again
    at the start, and rows committed while the server was stopped wake it once."""
    served.queue("first001")
    wait_for(lambda: served.succeeded("relay001", 1), "the relay's first run")
    wait_for(served.idle, "the first runs to settle")
    served.stop()

    again = Served(served.root)
    try:
        assert _index_woken(again) == []  # (up to date: nothing to do at the start)
        _commit_outside(again.engine, 20)
        again.scheduler.notify(committed=True)
        runs = wait_for(lambda: again.succeeded("relay001", 2), "the relay woken by row 20")
        assert [r.rows_read for r in runs] == [{"events": 3}, {"events": 1}]
        wait_for(again.idle, "the runs to settle")
    finally:
        again.stop()

    stopped = Engine(load_app(served.root))
    try:
        _commit_outside(stopped, 30)  # (while no scheduler serves the app)
    finally:
        stopped.close()
    third = Served(served.root)
    try:
        wait_for(lambda: third.succeeded("relay001", 3), "the relay woken at start")
        wait_for(third.idle, "the runs to settle")
        assert [r.rows_read for r in third.runs("relay001")] == \
            [{"events": 3}, {"events": 1}, {"events": 1}]
        assert third.out() == [0, 1, 2, 20, 30]
    finally:
        third.stop()


def test_commits_landing_throughout_the_readers_runs_wake_it_for_each_row_once(
        served: Served) -> None:
    """Webhook-like commits one after another while the relay's runs start and end: the
    scheduler's looks (from what it keeps in memory) race each run's end and each commit.
    Every row reaches ``out`` with no later commit to wake the relay, each is read once, and
    no run of the relay reads nothing (woken for rows it had already read)."""
    sent = [100 + i for i in range(120)]
    for i, n in enumerate(sent):
        _commit_outside(served.engine, n)
        served.scheduler.notify(committed=True)
        time.sleep(0.004 * (i % 7))  # (bursts and pauses, as a webhook's commits come)
    wait_for(lambda: served.out() == sent, "every row in out, without a later commit")
    wait_for(served.idle, "the runs to settle")
    runs = served.runs("relay001")
    assert [r.status for r in runs] == ["succeeded"] * len(runs)
    assert [r.id for r in runs if not (r.rows_read or {}).get("events")] == []
    assert sum(r.rows_read["events"] for r in runs) == len(sent)
    assert _index_woken(served) == [] and _woken(served) == []  # (nothing left to wake it)
