"""Live logs: `patterns logs -f` follows runs as they happen, from another process, and
logging records keep their level."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from tests.cli.conftest import COMMAND, ok, patterns

GRAPH = """
title: Live app
functions:
  - node_file: talk.py
    id: talk0001
  - node_file: quiet.py
    id: quie0001
    trigger: manual
"""

TALK = """
import logging, os, sys, time
from pathlib import Path

print("first line")
log = logging.getLogger("talker")
log.info("an info record")
logging.warning("a warning record")
try:
    1 / 0
except ZeroDivisionError:
    logging.exception("it broke")
gate = Path(os.environ["GATE"])
deadline = time.time() + 30
while not gate.exists() and time.time() < deadline:
    time.sleep(0.05)
print("second line, after the gate")
"""


def make_app(root: Path) -> Path:
    root.mkdir()
    (root / "graph.yml").write_text(GRAPH)
    (root / "talk.py").write_text(textwrap.dedent(TALK))
    (root / "quiet.py").write_text("print('quiet')\n")
    return root


class Follower:
    """`patterns logs -f` in the background, its output collected line by line."""

    def __init__(self, *args: Any) -> None:
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
        self.proc = subprocess.Popen([*COMMAND, "logs", *map(str, args)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, fragment: str, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(fragment in line for line in self.lines):
                return
            time.sleep(0.05)
        raise AssertionError(f"never saw {fragment!r}; got {self.lines}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        return code


def test_follow_shows_output_while_the_run_is_still_going(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    gate = tmp_path / "gate"
    follower = Follower(root, "-f")
    follower.wait_for("following the runs of app 'Live app'")
    run = subprocess.Popen([*COMMAND, "run", str(root)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "GATE": str(gate), "NO_COLOR": "1"})
    try:
        # The first line reaches the follower while the node is still waiting at the gate.
        follower.wait_for("talk | first line")
        assert run.poll() is None, "the run ended before its first line was followed"
        assert not any("second line" in line for line in follower.lines)
        gate.touch()
        follower.wait_for("talk | second line, after the gate")
        follower.wait_for("■ talk succeeded")
    finally:
        out, _ = run.communicate(timeout=60)
    assert run.returncode == 0, out
    assert follower.stop() == 0
    text = "\n".join(follower.lines)
    assert "talk | INFO talker: an info record" in text
    assert "talk | WARNING a warning record" in text
    assert "talk | ERROR it broke" in text and "ZeroDivisionError: division by zero" in text
    assert "Traceback" in text  # the logged exception's own traceback, as part of the record
    # `patterns run` itself streams the same lines, prefixed by node
    assert "talk | first line" in out and "talk | WARNING a warning record" in out


def test_logs_keep_the_level_of_logging_records(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    gate = tmp_path / "gate"
    gate.touch()
    ok(patterns("run", root, env={"GATE": str(gate)}))
    doc = json.loads(ok(patterns("logs", root, "--node", "talk.py", "--json")).stdout)
    records = [(line.get("level"), line["text"]) for line in doc["lines"]
               if line["stream"] == "log"]
    assert ("INFO", "talker: an info record") in records
    assert ("WARNING", "a warning record") in records
    assert ("ERROR", "it broke") in records
    assert all(level == "ERROR" for level, text in records if "ZeroDivisionError" in text)
    assert {"time", "stream", "text"} <= set(doc["lines"][0])


def test_a_node_that_configures_logging_gets_its_own_configuration(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    (root / "quiet.py").write_text(textwrap.dedent("""
        import logging
        logging.basicConfig(level=logging.WARNING, format="custom %(levelname)s %(message)s")
        logging.info("hidden by the node's own level")
        logging.warning("shown in the node's own format")
    """))
    ok(patterns("run", root, "--node", "quiet.py"))
    doc = json.loads(ok(patterns("logs", root, "--node", "quiet.py", "--json")).stdout)
    lines = [(line["stream"], line["text"]) for line in doc["lines"]]
    assert ("stderr", "custom WARNING shown in the node's own format") in lines
    assert not any("hidden" in text for _, text in lines)


def test_follow_a_finished_run_prints_it_and_exits(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    ok(patterns("run", root, "--node", "quiet.py"))
    runs = json.loads(ok(patterns("runs", root, "--json")).stdout)
    run_id = runs[0]["id"]
    out = ok(patterns("logs", root, "-f", "--run", run_id[-8:])).stdout
    assert "quiet | quiet" in out and "■ quiet succeeded" in out


def test_logs_while_another_process_holds_the_store_come_from_the_live_log(
        tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    gate = tmp_path / "gate"
    run = subprocess.Popen([*COMMAND, "run", str(root)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "GATE": str(gate)})
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            shown = patterns("logs", root, "--node", "talk.py")
            if "first line" in shown.stdout:
                break
            time.sleep(0.1)
        assert shown.returncode == 0, shown.stderr
        assert "talk | first line" in shown.stdout
        assert "second line" not in shown.stdout
    finally:
        gate.touch()
        run.communicate(timeout=60)
    assert run.returncode == 0


def test_a_run_whose_engine_died_ends_the_follow(tmp_path: Path) -> None:
    from patterns.engine.livelog import follow, live_log_path

    store = tmp_path / "store.duckdb"
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = live_log_path(store)
    live.write_text(json.dumps({"e": "start", "run": "R1", "node": "n", "title": "N",
                                "trigger": "manual", "pid": dead.pid, "t": "x"}) + "\n"
                    + json.dumps({"e": "out", "run": "R1", "t": "x", "s": "stdout",
                                  "x": "hello"}) + "\n")
    events = list(follow(live, run_id="R1", poll=0.01))
    assert [e.kind for e in events] == ["start", "out", "end"]
    assert events[-1].run.end == {
        "status": "engine stopped",
        "error": "the engine that ran it stopped before the run ended"}


def test_following_survives_rotation_of_the_live_log(tmp_path: Path, monkeypatch: Any) -> None:
    from patterns.engine import livelog
    from patterns.store.model import RunRecord

    monkeypatch.setattr(livelog, "ROTATE_BYTES", 2_000)
    path = tmp_path / "store.duckdb.live.jsonl"
    writer = livelog.LiveLog(path)
    record = RunRecord(id="R1", node_id="n", node_title="N", trigger="manual", status="running",
                       queued_at=None)
    writer.start(record)
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        for event in livelog.follow(path, run_id="R1", poll=0.01):
            if event.kind == "out" and event.line is not None:
                seen.append(event.line["x"])
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    for i in range(300):
        writer.output("R1", json.dumps(["2026-01-01T00:00:00", "stdout", f"line {i}"]))
        if i % 10 == 0:
            time.sleep(0.03)
    writer.end(RunRecord(id="R1", node_id="n", node_title="N", trigger="manual",
                         status="succeeded", queued_at=None))
    assert done.wait(10), "the follower never saw the end after rotations"
    assert path.with_name(path.name + ".1").exists()
    assert seen == [f"line {i}" for i in range(300)]
