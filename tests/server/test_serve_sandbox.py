"""`patterns serve` runs node code in the OS sandbox by default (docs/security.md), refuses
to start where it cannot, and runs it unsandboxed only when told to."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from patterns.engine import sandbox
from tests.server.conftest import COMMAND, write_app

if not sandbox.available() and not os.environ.get("CI"):  # (in CI: these fail, loudly)
    pytest.skip(f"no sandbox here: {sandbox._probe()}", allow_module_level=True)

GRAPH = """
slug: probe-app
functions:
  - node_file: probe.py
stores:
  - table: seen
"""
PROBE = """
import os
from patterns import Table
home = {home!r}
Table("seen", "w").append({{
    "store": os.path.exists(".patterns/store.duckdb"),
    "home": os.path.exists(home),
    "auth_token": "PATTERNS_AUTH_TOKEN" in os.environ,
}})
"""


def probe_app(root: Path) -> Path:
    return write_app(root, GRAPH, {"probe.py": PROBE.format(home=os.environ["PATTERNS_HOME"])})


def trigger(root: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run([*COMMAND, "trigger", str(root), "probe.py"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stdout + done.stderr


def seen(server: Any, root: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """What the probe saw, run by a trigger (it may also have run at the start)."""
    trigger(root, env)
    server.wait_for(lambda: sum(r["status"] == "succeeded" for r in server.runs("probe-app"))
                    >= 1 and len(server.rows("probe-app", "seen")) >= 1, what="the probe")
    rows = server.rows("probe-app", "seen")
    keys = ("store", "home", "auth_token")
    assert len({tuple(r[k] for k in keys) for r in rows}) == 1, rows
    return dict(rows[-1])


def test_served_nodes_run_sandboxed_by_default(tmp_path: Path, serve: Any) -> None:
    root = probe_app(tmp_path / "app")
    server = serve(root, env={"PATTERNS_NO_SANDBOX": ""})
    assert not any("NOT sandboxed" in line for line in server.output)
    row = seen(server, root)
    assert (row["store"], row["home"], row["auth_token"]) == (False, False, False)


def test_serve_refuses_where_the_sandbox_cannot_start_unless_told(tmp_path: Path,
                                                                   serve: Any) -> None:
    root = probe_app(tmp_path / "app")
    no_bwrap = {"PATH": str(tmp_path / "empty-bin"), "PATTERNS_NO_SANDBOX": ""}
    done = subprocess.run([*COMMAND, "serve", str(root), "--port", "0"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **no_bwrap})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: cannot sandbox node code: bubblewrap (bwrap) is not "
                               "installed")
    assert "--no-sandbox" in lines[0]
    assert not (root / ".patterns" / "server.json").exists()

    server = serve(root, args=("--no-sandbox",), env=no_bwrap)
    assert sum("node code is NOT sandboxed" in line for line in server.output) == 1
    row = seen(server, root, no_bwrap)
    assert row["store"] and row["home"]  # as told: unsandboxed
