"""The durable scheduler on a real store: cron slots, retries, continuations, restarts."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from patterns.engine.engine import Engine
from patterns.engine.scheduler import Scheduler, next_fire
from patterns.graph.loader import load_app
from patterns.store.interface import Schedule
from tests.server.conftest import write_app

GRAPH = """
title: Timed
functions:
  - node_file: tick.py
    id: tick0001
    trigger: "*/5 * * * *"
  - node_file: flaky.py
    id: flaky001
    trigger: manual
    settings:
      retries: {count: 2, backoff_seconds: 0.1}
  - node_file: asked.py
    id: asked001
    trigger: manual
stores:
  - table: ticks
"""

FILES = {
    "tick.py": "from patterns import Table\nTable('ticks', 'w').append({'t': 1})\n",
    "flaky.py": "raise RuntimeError('always fails')\n",
    "asked.py": "print('only when asked')\n",
}


class Served:
    """An engine and its scheduler over an app's store, started and stopped like a server."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.engine: Engine | None = None
        self.scheduler: Scheduler | None = None

    def start(self) -> Scheduler:
        self.engine = Engine(load_app(self.root))
        self.scheduler = Scheduler(self.engine)
        self.scheduler.start()
        return self.scheduler

    def stop(self) -> None:
        assert self.scheduler is not None and self.engine is not None
        self.scheduler.stop(drain_seconds=5)
        self.engine.close()

    def runs(self) -> list[Any]:
        assert self.engine is not None
        with self.engine.store.read() as view:
            return list(reversed(view.runs.recent(None, 1000)))

    def wait_for(self, check: Callable[[], Any], timeout: float = 30) -> Any:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if result := check():
                return result
            time.sleep(0.05)
        raise AssertionError(f"timed out; runs: {[(r.node_id, r.trigger, r.status) for r in self.runs()]}")


@pytest.fixture
def served(tmp_path: Path) -> Any:
    holder = Served(write_app(tmp_path / "timed", GRAPH, FILES))
    yield holder
    if holder.engine is not None:
        with contextlib.suppress(Exception):
            holder.stop()


def test_a_cron_slot_missed_while_down_fires_once_and_never_twice(served: Any) -> None:
    served.start()
    served.wait_for(lambda: served.scheduler._schedules())
    schedule = served.scheduler._schedules()["tick0001"]
    assert schedule.next_fire > dt.datetime.now(dt.UTC)  # a first start does not fire
    assert not [r for r in served.runs() if r.node_id == "tick0001"]
    # The server goes down over two slots...
    with served.engine.store.transaction() as tx:
        tx.schedules.set(Schedule(
            "tick0001", schedule.cron, schedule.timezone,
            dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)))
    served.stop()
    served.start()  # ...and comes back: the missed slots fire once
    served.wait_for(lambda: [r for r in served.runs()
                             if r.node_id == "tick0001" and r.status == "succeeded"])
    after = served.scheduler._schedules()["tick0001"].next_fire
    assert after > dt.datetime.now(dt.UTC)
    served.stop()
    served.start()  # a second restart fires nothing more
    time.sleep(1.0)
    ticks = [r for r in served.runs() if r.node_id == "tick0001"]
    assert [r.trigger for r in ticks] == ["schedule"]


def test_a_due_slot_fires_while_serving(served: Any) -> None:
    served.start()
    served.wait_for(lambda: served.scheduler._schedules())
    with served.engine.store.transaction() as tx:
        tx.schedules.set(Schedule("tick0001", "*/5 * * * *", "UTC",
                                  dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)))
    served.scheduler.reload()  # (as a hot reload would: schedules are read again)
    served.wait_for(lambda: [r for r in served.runs() if r.node_id == "tick0001"])


def test_retries_back_off_and_manual_nodes_wait_to_be_asked(served: Any) -> None:
    scheduler = served.start()
    engine = served.engine
    scheduler.trigger(engine.app.node("flaky.py"))
    attempts = served.wait_for(lambda: (r := [x for x in served.runs()
                                              if x.node_id == "flaky001"]) and len(r) == 3 and r)
    assert [r.attempt for r in attempts] == [1, 2, 3]
    assert [r.trigger for r in attempts] == ["manual", "retry", "retry"]
    gaps = [(b.started_at - a.ended_at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # exponential backoff
    time.sleep(0.5)
    assert len([x for x in served.runs() if x.node_id == "flaky001"]) == 3  # then it stops
    assert not [x for x in served.runs() if x.node_id == "asked001"]
    with engine.store.read() as view:
        assert view.queue.items() == []


def test_cron_times_follow_the_timezone() -> None:
    after = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
    paris = next_fire("0 9 * * *", "Europe/Paris", after)
    assert paris == dt.datetime(2026, 1, 16, 8, 0, tzinfo=dt.UTC)  # 09:00 CET
    summer = next_fire("0 9 * * *", "Europe/Paris", dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC))
    assert summer == dt.datetime(2026, 7, 2, 7, 0, tzinfo=dt.UTC)  # 09:00 CEST
    assert next_fire("@hourly", "UTC", after) == dt.datetime(2026, 1, 15, 13, tzinfo=dt.UTC)


PIPELINE = """
title: Stages
functions:
  - node_file: load.py
    id: load0001
    trigger: manual
  - node_file: idle.py
    id: idle0001
    trigger: manual
  - node_file: next.py
    id: next0001
  - node_file: other.py
    id: other001
stores:
  - table: loaded
  - table: unused
"""

PIPELINE_FILES = {
    "load.py": "from patterns import Table\nTable('loaded', 'w').append({'n': 1})\n",
    "idle.py": "from patterns import Table\nTable('loaded', 'w')\n",
    "next.py": "from patterns import Table\nfor r in Table('loaded').as_stream():\n    pass\n",
    "other.py": "from patterns import Table\nfor r in Table('unused').as_stream():\n    pass\n",
}


def test_a_run_that_wrote_rows_queues_their_readers_with_its_end(tmp_path: Path) -> None:
    # The scheduler's loop is not started: only the end of the run itself can queue the
    # reader, in the transaction that commits the rows.
    engine = Engine(load_app(write_app(tmp_path / "stages", PIPELINE, PIPELINE_FILES)))
    scheduler = Scheduler(engine)
    try:
        def ended(node_id: str) -> Any:
            with engine.store.read() as view:
                return [r for r in view.runs.recent(node_id, 10) if r.ended_at is not None]

        scheduler.trigger(engine.app.node("idle.py"))  # (declares the table, writes no row)
        scheduler._start_due()
        deadline = time.time() + 60
        while not ended("idle0001") and time.time() < deadline:
            time.sleep(0.05)
        with engine.store.read() as view:
            assert view.queue.items() == []  # nothing written: nothing to wake
        scheduler.trigger(engine.app.node("load.py"))
        scheduler._start_due()
        while not ended("load0001") and time.time() < deadline:
            time.sleep(0.05)
        (run,) = ended("load0001")
        assert run.status == "succeeded" and run.rows_written == {"loaded": 1}
        with engine.store.read() as view:
            waiting = [(i.node_id, i.trigger) for i in view.queue.items()]
        assert waiting == [("next0001", "upstream")]
    finally:
        scheduler.stop(drain_seconds=5)
        engine.close()
