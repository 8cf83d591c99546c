"""Fixtures for CLI tests: real apps in tmp folders, every command run as a user types it.

Each command runs as ``python -m patterns.cli.main ...`` in a subprocess with
``PATTERNS_HOME`` pointing at a temporary folder, so the user's secrets are never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

GRAPH = """
title: CLI test app
functions:
  - node_file: gen.py
    id: gen00001
  - node_file: consume.py
    id: cons0001
    inputs:
      source: events
  - node_file: broken.py
    id: brok0001
    trigger: manual
stores:
  - table: events
  - table: bulk
  - table: copied
  - table: later
"""

GEN = """
import datetime as dt
import sys

from patterns import State, Table

events = Table("events", "w")
bulk = Table("bulk", "w")
state = State()
runs = state.get_value("runs", 0) + 1
events.append([
    {"n": i, "name": f"event {i}", "score": i / 2, "ok": i % 2 == 0,
     "meta": {"tags": ["a", "b"], "depth": {"k": i}},
     "at": dt.datetime(2024, 1, 2, 3, 4, i, tzinfo=dt.UTC)}
    for i in range(5)
])
bulk.append([{"i": i} for i in range(BULK_ROWS)])
state.set_value("runs", runs)
print(f"generated 5 events, run {runs}")
print("a warning", file=sys.stderr)
"""

CONSUME = """
from patterns import Table

source = Table("source")
copied = Table("copied", "w")
count = 0
for record in source.as_stream().consume_records():
    copied.append({"n": record["n"], "meta": record["meta"]})
    count += 1
print(f"consumed {count}")
"""

BROKEN = """
print("about to fail")
raise ValueError("boom")
"""

#: The installed ``patterns`` script next to this Python, else the module behind it.
_SCRIPT = Path(sys.executable).with_name("patterns")
COMMAND = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "patterns.cli.main"]

#: More rows than one Arrow batch of the store (65,536), so exports span batches.
BULK_ROWS = 70_000


@pytest.fixture(scope="session", autouse=True)
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep secrets (and anything else kept in the Patterns home) out of the user's home,
    also for module-scoped fixtures (tests/conftest.py gives each test a home of its own)."""
    home = tmp_path_factory.mktemp("patterns-home")
    saved = {k: os.environ.get(k) for k in ("PATTERNS_HOME", "PATTERNS_STORE")}
    os.environ["PATTERNS_HOME"] = str(home)
    os.environ.pop("PATTERNS_STORE", None)
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def patterns(*args: Any, cwd: Path | None = None, input: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``patterns ARGS...`` the way a user does; output is captured as text."""
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    if "FORCE_COLOR" in full_env:
        full_env.pop("NO_COLOR")
    return subprocess.run([*COMMAND, *map(str, args)],
                          cwd=cwd, input=input if input is not None else "",
                          capture_output=True, text=True, env=full_env, timeout=120)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """``result`` after checking the command succeeded."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def failed(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The error line of a command that must fail cleanly: exit 1, no traceback."""
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return result.stderr


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write_app(root: Path, bulk_rows: int = BULK_ROWS) -> Path:
    """The test app (not run yet): a generating node, a consuming one, a failing one."""
    root.mkdir(parents=True, exist_ok=True)
    files = {"graph.yml": GRAPH, "gen.py": GEN.replace("BULK_ROWS", str(bulk_rows)),
             "consume.py": CONSUME, "broken.py": BROKEN}
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def populate(root: Path, *, bulk_rows: int = BULK_ROWS, fail: bool = True) -> Path:
    """Write the app and run it: gen and consume succeed, then broken fails (run last)."""
    write_app(root, bulk_rows)
    ok(patterns("run", root, "--quiet"))
    if fail:
        assert patterns("run", root, "--node", "broken.py", "--quiet").returncode == 1
    return root


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One populated app shared by the read-only tests of a module."""
    return populate(tmp_path_factory.mktemp("app") / "app")


@pytest.fixture
def fresh_app(tmp_path: Path) -> Path:
    """A run app of this test's own (small, no failed run), for commands that change it."""
    return populate(tmp_path / "app", bulk_rows=10, fail=False)
