"""`patterns validate` checks every ${{ secret }} and ${{ connection.x }} the app refers to
and suggests the close name; a missing one stops its node's run before it starts, and no run
is recorded."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.cli.conftest import failed, ok, patterns

GRAPH = """
title: Secrets app
functions:
  - node_file: fetch.py
    id: fetch001
    parameter_values:
      token: ${{ api_tokn }}
      api: ${{ connection.warehous }}
  - node_file: other.py
    id: other001
stores:
  - table: fetched
  - table: others
"""

FETCH = """
from patterns import Connection, Parameter, Table
token = Parameter("token", type=str)
api = Parameter("api", type=Connection("warehouse"))
Table("fetched", "w").append({"ok": True})
"""

OTHER = """
from patterns import Table
Table("others", "w").append({"ok": True})
"""


def write(root: Path) -> Path:
    root.mkdir()
    for name, text in (("graph.yml", GRAPH), ("fetch.py", FETCH), ("other.py", OTHER)):
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


def test_validate_names_missing_secrets_and_suggests_the_close_name(tmp_path: Path) -> None:
    root = write(tmp_path / "app")
    env = {"PATTERNS_HOME": str(tmp_path / "home")}
    ok(patterns("create", "secret", "api_token", "t0k3n", env=env))
    ok(patterns("create", "secret", "connection.warehouse", '{"url": "x"}', env=env))
    result = ok(patterns("validate", cwd=root, env=env))  # sound graph: exit 0 ...
    out = result.stdout
    assert "needs configuration (2):" in out
    assert "graph.yml:6 (node fetch.py)" in out and "secret 'api_tokn', which is not set" in out
    assert "did you mean 'api_token'?" in out
    assert "connection 'warehous', which is not set" in out
    assert "did you mean 'connection.warehouse'?" in out
    assert "t0k3n" not in out  # a secret's value is never shown
    assert patterns("validate", "--strict", cwd=root, env=env).returncode == 1  # ... 1 strict

    # the node does not run: no run is recorded for it; the rest of the app runs
    ran = " ".join(patterns("run", cwd=root, env=env).stdout.split())  # unwrapped
    assert "skipped fetch.py: needs configuration" in ran
    assert "did you mean 'api_token'?" in ran
    refused = failed(patterns("run", "--node", "fetch.py", cwd=root, env=env),
                     "api_tokn", "did you mean 'api_token'?")
    assert "Traceback" not in refused
    runs = json.loads(ok(patterns("runs", "--json", cwd=root, env=env)).stdout)
    assert [r["node_id"] for r in runs] == ["other001"]

    # fixed in graph.yml: valid, and it runs
    graph = root / "graph.yml"
    graph.write_text(graph.read_text().replace("api_tokn", "api_token")
                     .replace("connection.warehous ", "connection.warehouse "))
    assert "no problems" in ok(patterns("validate", "--strict", cwd=root, env=env)).stdout
    ok(patterns("run", "--node", "fetch.py", cwd=root, env=env))
    assert len(json.loads(ok(patterns("runs", "--json", cwd=root, env=env)).stdout)) == 2
