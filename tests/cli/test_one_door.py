"""One door to the store: while `patterns serve` or a long `patterns run` holds an app's store,
every command and notebook read goes through that engine and prints what it prints with no
engine running; resets wait for the runs they concern; a second `patterns run` waits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import COMMAND, failed, jsonl, ok, patterns
from tests.conftest import wait_for
from tests.server.conftest import Server

GRAPH = """
title: One door app
functions:
  - node_file: gen.py
    id: gen00001
  - node_file: consume.py
    id: cons0001
    inputs:
      source: events
  - node_file: slow.py
    id: slow0001
    trigger: manual
stores:
  - table: events
  - table: copied
"""

GEN = """
import datetime as dt
from patterns import State, Table

state = State()
runs = state.get_value("runs", 0) + 1
Table("events", "w").append([
    {"n": i, "name": f"event {i}", "meta": {"tags": ["a"], "k": i},
     "at": dt.datetime(2024, 1, 2, 3, 4, i, tzinfo=dt.UTC)} for i in range(4)])
state.set_value("runs", runs)
print(f"generated run {runs}")
"""

CONSUME = """
from patterns import Table

copied = Table("copied", "w")
for record in Table("source").as_stream().consume_records():
    copied.append({"n": record["n"]})
"""

# Runs until the file $GATE exists, so that a test holds the store as long as it likes.
SLOW = """
import os, time
from pathlib import Path
from patterns import State

print("slow started", flush=True)
gate = Path(os.environ["GATE"])
deadline = time.time() + 90
while not gate.exists() and time.time() < deadline:
    time.sleep(0.05)
state = State()
state.set_value("passes", state.get_value("passes", 0) + 1)
print("slow done")
"""

def make_app(root: Path, gate: Path) -> Path:
    """The app, run once (gen, consume), and slow.py once (so it has a state)."""
    root.mkdir(parents=True)
    for name, text in {"graph.yml": GRAPH, "gen.py": GEN, "consume.py": CONSUME,
                       "slow.py": SLOW}.items():
        (root / name).write_text(textwrap.dedent(text).lstrip())
    ok(patterns("run", root, "--quiet"))
    gate.touch()
    ok(patterns("run", root, "--node", "slow.py", "--quiet", env={"GATE": str(gate)}))
    gate.unlink()
    return root


#: Every reading command, as a user types it after `patterns`.
COMMANDS = {
    "table list json": "table list . --json",
    "table list": "table list .",
    "table show": "table show . events",
    "table show jsonl": "table show . events --format jsonl",
    "table show version csv": "table show . copied --version 1 --format csv --offset 1",
    "table versions": "table versions . events --json",
    "table export": "table export . events -o - --format jsonl",
    "table export parquet": "table export . events -o {tmp}/events.parquet",
    "runs": "runs . --node gen.py --json",
    "logs": "logs . --node gen.py",
    "state show": "state show . gen.py --json",
}

# The commands run in one process (a process each would take most of this test's time on a
# busy machine), each through the CLI's own entry point; then a notebook's reads.
READER = """
import json, shlex, sys
from click.testing import CliRunner
from patterns.cli.main import cli

found = {}
for name, line in json.loads(sys.argv[1]).items():
    result = CliRunner().invoke(cli, shlex.split(line))
    assert result.exit_code == 0, (line, result.output, result.exception)
    found[name] = result.output

import pyarrow.parquet as pq
from pathlib import Path
parquet = Path(sys.argv[2]) / "events.parquet"
found["export parquet"] = pq.read_table(parquet).to_pylist()
parquet.unlink()

from patterns import Table
events = Table("events")
found["notebook"] = events.read_dataframe().to_json(orient="records", date_format="iso")
found["notebook sql"] = events.read_sql("select count(*) as n from events")
print(json.dumps(found, default=str))
"""


def outputs(root: Path, tmp: Path) -> dict[str, Any]:
    """What every reading command prints (and what a notebook reads), by command; run in the
    app's folder, as a user in a terminal or a notebook there."""
    lines = {name: line.format(tmp=tmp) for name, line in COMMANDS.items()}
    done = subprocess.run([sys.executable, "-c", READER, json.dumps(lines), str(tmp)], cwd=root,
                          capture_output=True, text=True, timeout=240,
                          env={**{k: v for k, v in os.environ.items() if k != "PATTERNS_APP"},
                               "COLUMNS": "200", "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.splitlines()[-1]))


class Background:
    """A command running in the background, its output (stdout and stderr) collected."""

    def __init__(self, *args: Any, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [*COMMAND, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})})
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait(self, timeout: float = 90) -> int:
        code = self.proc.wait(timeout=timeout)
        time.sleep(0.1)  # the reader thread takes the last lines
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()



def engine_doc(root: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((root / ".patterns" / "engine.json").read_text()))
    except (OSError, ValueError):
        return None


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "gate"
    yield path
    path.touch()  # whatever happened, let a waiting node end


def test_every_command_works_while_a_patterns_run_holds_the_store(tmp_path: Path,
                                                                 gate: Path) -> None:
    root = make_app(tmp_path / "app", gate)
    before = outputs(root, tmp_path)
    holder = Background("run", root, "--node", "slow.py", env={"GATE": str(gate)})
    waiters: list[Background] = []
    try:
        wait_for(lambda: "slow started" in holder.text, "slow.py to run")
        doc = engine_doc(root)
        assert doc is not None and doc["kind"] == "run" and doc["pid"] == holder.proc.pid
        assert (root / ".patterns" / "engine.json").stat().st_mode & 0o777 == 0o600
        assert outputs(root, tmp_path) == before

        # A reset of the running node waits for its run; so does a second `patterns run`.
        resetter = Background("state", "reset", root, "slow.py", "--yes")
        second = Background("run", root, "--node", "gen.py")
        trigger = Background("trigger", root, "gen.py")
        waiters += [resetter, second, trigger]
        wait_for(lambda: "waiting for run" in resetter.text, "the reset to wait")
        assert "of node slow.py to end..." in resetter.text
        wait_for(lambda: f"another patterns run (pid {holder.proc.pid}) is running this app; "
                         f"waiting for it..." in second.text, "the second run to wait")
        wait_for(lambda: "is running this app; waiting for it..." in trigger.text,
                 "the trigger to wait")
        assert all(w.proc.poll() is None for w in waiters)
        gate.touch()
        assert holder.wait() == 0, holder.text
        assert resetter.wait() == 0, resetter.text
        assert second.wait() == 0, second.text
        assert trigger.wait() == 0, trigger.text
    finally:
        for proc in (holder, *waiters):
            proc.stop()
    assert "state of node slow.py cleared" in resetter.text
    # the reset came after slow's run (which had counted a second pass): no state is left
    assert "has no state" in ok(patterns("state", "show", root, "slow.py")).stdout
    assert json.loads(ok(patterns("state", "show", root, "gen.py", "--json")).stdout) == \
        {"runs": 3}  # the second run and the trigger did run, once the first had ended
    assert engine_doc(root) is None  # removed by the engine as it closed


@pytest.fixture
def server(tmp_path: Path, gate: Path) -> Iterator[Server]:
    """`patterns serve` of a made app (its outputs before serving in ``server.before``)."""
    root = make_app(tmp_path / "app", gate)
    before = outputs(root, tmp_path)
    served = Server([root], env={"GATE": str(gate)})
    served.before = before  # type: ignore[attr-defined]
    yield served
    if served.proc is not None and served.proc.poll() is None:
        served.kill()


def test_every_command_works_while_serving_and_resets_take_effect(
        tmp_path: Path, gate: Path, server: Server) -> None:
    root, before = server.roots[0], server.before  # type: ignore[attr-defined]
    doc = wait_for(lambda: engine_doc(root), "the server's engine.json")
    assert doc["kind"] == "serve"
    assert outputs(root, tmp_path) == before

    # `patterns run` does not fight the server for the store: it says what to do instead
    failed(patterns("run", root), "patterns serve (pid", "is serving this app",
           "patterns trigger")

    # a stream reset while serving: the next run of consume.py reads every event again
    ok(patterns("stream", "reset", root, "consume.py", "events", "--yes"))
    server.post("/apps/one-door-app/nodes/consume.py/trigger", json={})
    wait_for(lambda: len(server.rows("one-door-app", "copied")) == 8,
             "consume.py to copy the events again")
    copied = jsonl(ok(patterns("table", "show", root, "copied", "--format", "jsonl",
                               "--limit", "100")).stdout)
    assert sorted(r["n"] for r in copied) == [0, 0, 1, 1, 2, 2, 3, 3]

    # a table reset while serving: a new, empty version
    out = ok(patterns("table", "reset", root, "copied", "--yes")).stdout
    assert "table copied is now version 2, empty" in out
    tables = {t["name"]: t for t in json.loads(ok(patterns("table", "list", root,
                                                            "--json")).stdout)}
    assert (tables["copied"]["version"], tables["copied"]["rows"]) == (2, 0)
    old = jsonl(ok(patterns("table", "show", root, "copied", "--version", "1", "--format",
                            "jsonl", "--limit", "100")).stdout)
    assert len(old) == 8  # the old version, read through the server's engine

    # a state reset of a node running on the server waits for its run
    server.post("/apps/one-door-app/nodes/slow.py/trigger", json={})
    wait_for(lambda: any(r["status"] == "running" for r in server.runs("one-door-app",
                                                                       "slow.py")),
             "slow.py to run on the server")
    resetter = Background("state", "reset", root, "slow.py", "--yes")
    try:
        wait_for(lambda: "waiting for run" in resetter.text, "the reset to wait")
        gate.touch()
        assert resetter.wait() == 0, resetter.text
    finally:
        resetter.stop()
    assert "has no state" in ok(patterns("state", "show", root, "slow.py")).stdout
    assert server.stop() == 0
    assert engine_doc(root) is None


def test_a_stale_engine_file_is_ignored_and_removed(tmp_path: Path, gate: Path) -> None:
    root = make_app(tmp_path / "app", gate)
    before = outputs(root, tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = root / ".patterns" / "engine.json"
    stale.write_text(json.dumps({
        "pid": dead.pid, "uri": "grpc://127.0.0.1:9", "token": "old", "kind": "run",
        "store": str((root / ".patterns" / "store.duckdb").resolve()), "started_at": 0,
        "version": 1}))
    assert outputs(root, tmp_path) == before
    assert not stale.exists()
    assert "generated run 2" in ok(patterns("run", root)).stdout
