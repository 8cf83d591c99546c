"""kill -9 of `patterns serve` while a run's start is not yet recorded (a run's start is
recorded only once it has lasted: patterns/engine/run_start.py). The next start records the
lost attempt as failed, runs it again, and its effects land exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.server.conftest import write_app

GRAPH = """
title: Lost start
slug: lost
functions:
  - node_file: wait.py
    id: wait0001
    trigger: manual
stores:
  - table: out
"""

# No output, no checkpoint before its last: nothing of the run is shown or committed, so
# (with the window widened below) its start is not recorded while it waits.
WAIT = """
import os, time
from pathlib import Path
from patterns import Table
Table("out", "w").append({"n": 1})
Path(os.environ["MARK"]).touch()
gate = Path(os.environ["GATE"])
deadline = time.time() + 60
while not gate.exists() and time.time() < deadline:
    time.sleep(0.02)
"""


def test_an_engine_killed_before_a_runs_start_was_recorded(tmp_path: Path, serve: Any) -> None:
    root = write_app(tmp_path / "lost", GRAPH, {"wait.py": WAIT})
    mark, gate = tmp_path / "mark", tmp_path / "gate"
    server = serve(root, env={"MARK": str(mark), "GATE": str(gate),
                              "PATTERNS_START_RECORD_AFTER": "3600",
                              "PATTERNS_NO_SANDBOX": "1"})  # (the node touches MARK)
    response = server.post("/apps/lost/nodes/wait.py/trigger")
    assert response.status_code == 202, response.text
    server.wait_for(mark.exists, what="the run's process to append its record")
    assert server.runs("lost") == [], "the start was recorded: the window is not tested"
    server.kill()
    gate.touch()  # an orphaned node process, if the kill left one, ends (and commits nothing)
    server.start()

    def ended() -> list[dict[str, Any]]:
        runs = server.runs("lost")
        return runs if len(runs) == 2 and all(r["status"] != "running" for r in runs) else []

    lost, again = sorted(server.wait_for(ended, timeout=60, what="the run to run again"),
                         key=lambda r: r["started_at"])
    assert lost["status"] == "failed", lost
    assert "engine stopped" in lost["error"] and "runs again" in lost["error"], lost
    assert lost["node_id"] == "wait0001" and lost["trigger"] == "manual"
    assert lost["started_at"] and lost["ended_at"] and lost["started_at"] <= lost["ended_at"]
    assert again["status"] == "succeeded", again
    assert [r["n"] for r in server.rows("lost", "out")] == [1], "not exactly once"
