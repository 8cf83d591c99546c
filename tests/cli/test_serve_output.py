"""What `patterns serve` says in its own terminal (issue 16, item 9), and when cron nodes
run next (item 12): `patterns schedule`, the line under `patterns runs`, and the API."""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from croniter import croniter

from tests.cli.conftest import ok, patterns
from tests.cli.terminal import in_terminal
from tests.server.conftest import Server

GRAPH = """
title: Served app
slug: served
functions:
  - node_file: fine.py
    id: fine0001
  - node_file: bad.py
    id: bad00001
  - node_file: daily.py
    id: daily001
    trigger: "0 6 * * *"
  - node_file: often.py
    id: often001
    trigger: "*/10 * * * *"
stores:
  - table: things
"""

FILES = {
    "fine.py": """
        from patterns import Table
        Table("things", "w").append([{"i": i} for i in range(1234)])
    """,
    "bad.py": """
        print("about to fail")
        raise RuntimeError("the bad node broke")
    """,
    "daily.py": "print('daily')\n",
    "often.py": "print('often')\n",
}


def write(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "graph.yml").write_text(textwrap.dedent(GRAPH))
    for name, text in FILES.items():
        (root / name).write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()


def _ended(server: Server) -> list[dict[str, object]]:
    runs = server.get("/apps/served/runs")
    return [r for r in runs if r["status"] in ("succeeded", "failed")]


def test_serve_logs_each_runs_end_and_failure(tmp_path: Path, servers: list[Server]) -> None:
    server = Server([write(tmp_path / "app")])
    servers.append(server)
    server.wait_for(lambda: len(_ended(server)) >= 2, what="the first runs", timeout=90)
    out = server.wait_for(lambda: "bad failed" in "".join(server.output)
                          and "fine succeeded" in "".join(server.output)
                          and "".join(server.output), what="the run lines")
    run_ids = {r["node_id"]: str(r["id"])[-8:] for r in _ended(server)}
    fine = next(line for line in out.splitlines() if "fine succeeded" in line)
    assert re.search(rf"INFO fine succeeded \(first run\): 1,234 row\(s\) written in "
                     rf"\d+\.\d\ds, run {run_ids['fine0001']}", fine)
    bad = next(line for line in out.splitlines() if "bad failed" in line)
    assert "WARNING bad failed (first run)" in bad
    assert "RuntimeError: the bad node broke (bad.py, line 3)" in bad  # its error line
    assert "Traceback" not in out and "about to fail" not in out  # (not its output)
    assert f"`patterns logs {tmp_path / 'app'} --run {run_ids['bad00001']}`" in bad
    assert server.stop() == 0


def test_serve_quiet_logs_no_run(tmp_path: Path, servers: list[Server]) -> None:
    server = Server([write(tmp_path / "app")], "--quiet")
    servers.append(server)
    server.wait_for(lambda: len(_ended(server)) >= 2, what="the first runs", timeout=90)
    assert server.stop() == 0
    out = "".join(server.output)
    assert "on http://" in out  # (it still says where it listens)
    assert "succeeded" not in out and "failed" not in out and "the bad node" not in out


def _cron_next(cron: str) -> dt.datetime:
    fire: dt.datetime = croniter(cron, dt.datetime.now(dt.UTC)).get_next(dt.datetime)
    return fire


def test_schedule_lists_next_runs_when_not_served(tmp_path: Path) -> None:
    root = write(tmp_path / "app")
    docs = json.loads(ok(patterns("schedule", root, "--json")).stdout)  # before any run
    assert sorted(d["node"] for d in docs) == ["daily", "often"]
    assert [d["next_run"] for d in docs] == sorted(str(d["next_run"]) for d in docs)  # soonest
    daily = next(d for d in docs if d["node"] == "daily")
    assert dt.datetime.fromisoformat(str(daily["next_run"])) == _cron_next("0 6 * * *")
    assert not daily["kept"]
    for columns in (80, 200):
        screen = in_terminal("schedule", root, columns=columns)
        assert screen.code == 0, screen.text
        assert all(len(line) <= columns for line in screen.lines), screen.text
        assert re.search(r"node\s+cron\s+timezone\s+next run\s+in", screen.text)
        assert re.search(r"daily\s+0 6 \* \* \*\s+UTC\s+\S+", screen.text)
        assert "the app is not served" in screen.text
    patterns("run", root, "--quiet")
    shown = ok(patterns("runs", root)).stdout
    assert re.search(r"next scheduled: (often|daily) at \S+( \S+)? \(in \S+\), (often|daily) "
                     r"at ", shown), shown


def test_next_runs_from_the_server_and_its_api(tmp_path: Path, servers: list[Server]) -> None:
    root = write(tmp_path / "app")
    server = Server([root])
    servers.append(server)
    nodes = {n["id"]: n for n in server.get("/apps/served/nodes")}
    assert nodes["fine0001"]["next_run"] is None
    daily = dt.datetime.fromisoformat(nodes["daily001"]["next_run"])
    assert daily == _cron_next("0 6 * * *")
    assert server.get("/apps/served/nodes/daily001")["next_run"] == nodes["daily001"]["next_run"]
    spec = server.get("/openapi.json")
    assert "next_run" in spec["components"]["schemas"]["NodeOut"]["properties"]

    docs = json.loads(ok(patterns("schedule", root, "--json")).stdout)  # (through the server)
    daily_doc = next(d for d in docs if d["node"] == "daily")
    assert daily_doc["kept"] and dt.datetime.fromisoformat(str(daily_doc["next_run"])) == daily
    assert "not served" not in ok(patterns("schedule", root)).stdout
    assert server.stop() == 0
