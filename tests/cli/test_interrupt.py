"""Ctrl-C during ``patterns run`` (patterns/cli/interrupt.py), typed into a real terminal.

``patterns run`` runs in a pseudo-terminal of its own, as the foreground process group of
its session; the test types Ctrl-C (``\\x03``) into it, so the terminal driver sends SIGINT
exactly as it does to a user's command.
"""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

from tests.cli.conftest import ok, patterns
from tests.cli.terminal import Terminal

GRAPH = """
title: slow app
functions:
  - node_file: slow.py
    id: slow0001
stores:
  - table: out
"""

SLOW = """
import os, time
from patterns import Table

out = Table("out", "w")
out.append([{"i": i} for i in range(3)])
out.flush()  # staged in the engine, not committed
print(f"pid {os.getpid()} sleeping", flush=True)
time.sleep(300)
"""

#: What must never reach the user when a run is stopped.
NOISE = ("Traceback", "Flight", "grpc", "gRPC", "unavailable", "Connection refused",
         "EngineError")


def slow_app(root: Path) -> Path:
    root.mkdir(parents=True)
    for name, text in (("graph.yml", GRAPH), ("slow.py", SLOW)):
        (root / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def node_pid(text: str) -> int:
    line = next(x for x in text.splitlines() if "sleeping" in x)
    return int(line.split("pid ")[1].split()[0])


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def last_run(root: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    runs = json.loads(ok(patterns("runs", root, "--json", "--limit", "1", env=env)).stdout)
    assert runs, "no run recorded"
    return dict(runs[0])


def out_rows(root: Path, env: dict[str, str] | None = None) -> int:
    tables = json.loads(ok(patterns("table", "list", root, "--json", env=env)).stdout)
    return sum(int(t["rows"]) for t in tables if t["name"] == "out")


def test_ctrl_c_cancels_the_running_node_and_rolls_it_back(tmp_path: Path) -> None:
    root = slow_app(tmp_path / "app")
    term = Terminal("run", str(root))
    term.expect("sleeping")
    pid = node_pid(term.seen)
    pressed = time.monotonic()
    term.ctrl_c()
    code = term.wait(60)
    text = term.seen
    assert code == 130, text
    assert time.monotonic() - pressed < 30, "the node was left to finish its sleep"
    assert "stopping" in text and "Ctrl-C again" in text, text
    assert "cancelled" in text, text
    for noise in NOISE:
        assert noise not in text, text
    assert gone(pid), "the node process outlived the Ctrl-C"
    run = last_run(root)
    assert run["status"] == "cancelled", run
    assert "Ctrl-C" in str(run["error"]), run
    assert out_rows(root) == 0  # the rows it staged were dropped
    # The run's status is one of its own in `patterns runs`, too.
    assert "cancelled" in ok(patterns("runs", root)).stdout


def test_a_second_ctrl_c_exits_at_once_and_loses_nothing(tmp_path: Path) -> None:
    root = slow_app(tmp_path / "app")
    term = Terminal("run", str(root))
    term.expect("sleeping")
    pid = node_pid(term.seen)
    term.ctrl_c()
    term.ctrl_c()
    code = term.wait(30)
    text = term.seen
    assert code in (130, -2), text  # (-2: the second press came as Python was exiting)
    for noise in NOISE:
        assert noise not in text, text
    assert gone(pid), "the node process outlived the second Ctrl-C"
    # Never left "running": cancelled, or (quit before recording it) ended by the next
    # engine as stopped with its engine; nothing it staged was committed.
    run = last_run(root)
    assert run["status"] in ("cancelled", "failed"), run
    assert out_rows(root) == 0


def test_ctrl_c_on_a_postgresql_store_records_the_run_as_cancelled(tmp_path: Path,
                                                                   postgres_url: str) -> None:
    root = slow_app(tmp_path / "app")
    env = {"PATTERNS_STORE": postgres_url}
    term = Terminal("run", str(root), env=env)
    term.expect("sleeping")
    term.ctrl_c()
    assert term.wait(60) == 130, term.seen
    run = last_run(root, env)
    assert run["status"] == "cancelled", run
    assert out_rows(root, env) == 0
