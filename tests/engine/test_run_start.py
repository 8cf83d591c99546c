"""A run's start is recorded only if the run lasts (patterns/engine/run_start.py): a short run
is recorded whole by its final checkpoint. Whatever the timing, the store never holds a
commit of a run without the run's record, a run anyone has seen running is recorded running,
and a run that lasts shows as running before it ends."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import patterns.engine.run_start as run_start
from tests.conftest import wait_for

WAITER = """
import os, time
from pathlib import Path
from patterns import Table
Table("out", "w").append({"n": 1})
gate = Path(os.environ["GATE"])
deadline = time.time() + 60
while not gate.exists() and time.time() < deadline:
    time.sleep(0.02)
"""


def _runs(app: Any, node_id: str) -> list[Any]:
    with app.engine.store.read() as view:
        return list(view.runs.recent(node_id))


def _in_background(app: Any, node: str) -> tuple[threading.Thread, list[Any]]:
    ended: list[Any] = []
    app.reload()
    target = app.app.node(node)
    thread = threading.Thread(
        target=lambda: ended.append(app.engine.run_node(target, "manual")[0]), daemon=True)
    thread.start()
    return thread, ended


def test_a_short_run_is_recorded_whole_with_its_start_and_end(app_runner: Any) -> None:
    app = app_runner({"w.py": """
        from patterns import Table
        Table("out", "w").append({"n": 1})
    """}, ["out"])
    before = time.time()
    record = app.run_node("w")
    stored = app.stored_run(record.id)
    assert stored is not None and stored.status == "succeeded", stored
    assert stored.started_at.timestamp() >= before - 1
    assert stored.started_at <= stored.ended_at
    assert stored.checkpoints == 1 and stored.rows_written == {"out": 1}
    assert stored.trigger == "manual" and stored.node_title == record.node_title
    assert [r.id for r in _runs(app, record.node_id)] == [record.id]
    assert [r["n"] for r in app.rows("out")] == [1]


def test_a_run_that_lasts_shows_as_running_before_it_ends(
        app_runner: Any, tmp_path: Path, monkeypatch: Any) -> None:
    gate = tmp_path / "gate"
    monkeypatch.setenv("GATE", str(gate))
    app = app_runner({"w.py": WAITER}, ["out"])
    thread, ended = _in_background(app, "w")
    try:
        (running,) = wait_for(lambda: _runs(app, "w"), "the run's start to be recorded")
        assert running.status == "running" and running.ended_at is None
        assert app.rows("out") == []  # (nothing visible before the checkpoint)
    finally:
        gate.touch()
        thread.join(60)
    (record,) = ended
    stored = app.stored_run(record.id)
    assert stored.status == "succeeded" and stored.started_at == running.started_at
    assert [r["n"] for r in app.rows("out")] == [1]


def test_a_run_seen_running_by_its_output_is_recorded_running(
        app_runner: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(run_start, "START_RECORD_AFTER", 3600.0)  # never on its own
    gate = tmp_path / "gate"
    monkeypatch.setenv("GATE", str(gate))
    app = app_runner({"w.py": "print('started', flush=True)\n" + WAITER}, ["out"])
    seen: list[str] = []
    recorded_when_seen: list[Any] = []

    def output(record: Any, stream: str, line: str, level: Any) -> None:
        recorded_when_seen.append(app.stored_run(record.id))
        seen.append(line)

    monkeypatch.setattr(app.engine.reporter, "run_output", output)
    thread, ended = _in_background(app, "w")
    try:
        wait_for(lambda: seen, "the run's first output line")
        assert recorded_when_seen[0] is not None, "output shown before the run was recorded"
        assert recorded_when_seen[0].status == "running"
    finally:
        gate.touch()
        thread.join(60)
    assert ended[0].status == "succeeded"


def test_a_checkpoint_before_the_last_commits_with_its_run_recorded(
        app_runner: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(run_start, "START_RECORD_AFTER", 3600.0)  # never on its own
    gate = tmp_path / "gate"
    monkeypatch.setenv("GATE", str(gate))
    app = app_runner({
        "seed.py": """
            from patterns import Table
            Table("src", "w").append([{"n": 1}, {"n": 2}])
        """,
        "w.py": """
            import os, time
            from pathlib import Path
            from patterns import Table
            out, src = Table("out", "w"), Table("src")
            stream = src.as_stream()
            for record in stream.consume_records():
                out.append(record)
                stream.checkpoint()
                break  # one record committed; the run then waits
            gate = Path(os.environ["GATE"])
            deadline = time.time() + 60
            while not gate.exists() and time.time() < deadline:
                time.sleep(0.02)
        """}, ["src", "out"])
    assert app.run_node("seed").status == "succeeded"
    thread, ended = _in_background(app, "w")
    try:
        wait_for(lambda: app.rows("out"), "the first checkpoint to commit")
        (running,) = _runs(app, "w")
        assert running.status == "running", "a commit of the run without its record"
    finally:
        gate.touch()
        thread.join(60)
    stored = app.stored_run(ended[0].id)
    assert stored.status == "succeeded" and stored.checkpoints == 2
    assert stored.started_at == running.started_at
