"""A `patterns run` engine killed with SIGKILL mid-run: its run is never `running` forever.

`patterns runs` shows it failed with the reason at once; the next engine to open the store
records it so; what the run appended after its last checkpoint is not in the table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

from tests.cli.conftest import COMMAND, jsonl, ok, patterns

GRAPH = """
title: Dead engine
functions:
  - node_file: wait.py
    id: wait0001
stores:
  - table: out
"""

WAIT = """
import os, time
from pathlib import Path
from patterns import Table
out = Table("out", "w")
out.append({"n": 1})
print("appended, waiting", flush=True)
deadline = time.time() + 60
while not Path(os.environ["GATE"]).exists() and time.time() < deadline:
    time.sleep(0.05)
"""

DIED = "the engine stopped (killed or crashed) while this run was running"


def test_a_run_whose_engine_was_killed_is_failed_with_the_reason_never_running(
        tmp_path: Path) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (root / "graph.yml").write_text(textwrap.dedent(GRAPH))
    (root / "wait.py").write_text(textwrap.dedent(WAIT))
    gate = tmp_path / "gate"
    env = {**os.environ, "GATE": str(gate), "NO_COLOR": "1"}
    engine = subprocess.Popen([*COMMAND, "run", str(root)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    assert engine.stdout is not None
    stdout = engine.stdout
    threading.Thread(target=lambda: lines.extend(stdout), daemon=True).start()
    try:
        deadline = time.time() + 60
        while not any("appended, waiting" in line for line in lines):
            assert time.time() < deadline and engine.poll() is None, "".join(lines)
            time.sleep(0.05)
        os.kill(engine.pid, signal.SIGKILL)
        engine.wait(timeout=30)
        # Read before any engine starts again: already shown as failed, with the reason.
        (shown,) = json.loads(ok(patterns("runs", root, "--json")).stdout)
        assert shown["status"] == "failed" and DIED in shown["error"], shown
        gate.touch()  # lets an orphaned node process end, if the kill left one
        # The next engine records it so, and runs again from a consistent store.
        ok(patterns("run", root, env={"GATE": str(gate)}))
        old, new = sorted(json.loads(ok(patterns("runs", root, "--json")).stdout),
                          key=lambda r: r["started_at"])
        assert old["id"] == shown["id"]
        assert old["status"] == "failed" and DIED in old["error"]
        assert "rolled back to the last checkpoint" in old["error"]
        assert new["status"] == "succeeded"
        rows = jsonl(ok(patterns("table", "show", root, "out", "--format", "jsonl")).stdout)
        assert [r["n"] for r in rows] == [1], "the killed run's append was committed"
    finally:
        gate.touch()
        if engine.poll() is None:
            engine.kill()
