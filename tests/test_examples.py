"""The bundled example app stays runnable, exactly as the README runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "chat_enrich"
CLI = [sys.executable, "-m", "patterns.cli.main"]


def patterns(*args: str, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


@pytest.fixture(params=["duckdb", "postgresql"])
def store_at(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store an app runs on: its own DuckDB file, or a PostgreSQL database."""
    if request.param == "duckdb":
        return str(tmp_path / "chat_enrich" / ".patterns" / "store.duckdb")
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.slow
def test_chat_enrich_runs_end_to_end_and_converges(tmp_path: Path, store_at: str) -> None:
    app = tmp_path / "chat_enrich"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns(".patterns"))
    assert patterns("create", "secret", "demo_token", "t-1").returncode == 0
    assert patterns("create", "secret", "connection.demo_api",
                    '{"base_url": "https://api.example.invalid"}').returncode == 0
    assert patterns("validate", str(app)).returncode == 0

    first = patterns("run", str(app), "--json", "--store", store_at)
    assert first.returncode == 0, first.stdout + first.stderr
    runs = json.loads(first.stdout)["runs"]
    assert {r["node_id"] for r in runs} == {"ingest01", "enrich01", "ustats01", "report01",
                                            "fbdigest", "chdaily1"}
    assert all(r["status"] == "succeeded" for r in runs), runs
    assert sum(r["node_id"] == "ingest01" for r in runs) == 3  # request_new_run continues

    from patterns.store import open_store

    store = open_store(store_at, read_only=True)

    def query(sql: str, *tables: str) -> list[tuple[object, ...]]:
        with store.read() as view:
            found = view.query(sql.format(*map(store.view_name, tables))).read_all()
        return [tuple(r.values()) for r in found.to_pylist()]

    count = query("select count(*) AS n, count(distinct id) AS ids from {}", "messages_enriched")
    users = query("select sum(messages) from {}", "user_stats")
    report = query("select count(*) from {}", "daily_report")
    channels = query("select channel, messages, among_latest from {} order by patterns_id",
                     "channel_daily")
    store.close()
    assert count == [(60, 60)]          # every message enriched exactly once
    assert users == [(60,)] and report == [(4,)]
    # the SQL node (Postgres SQL) aggregated the Python node's output, on either store
    assert channels == [("general", 20, 3), ("help", 20, 3), ("random", 20, 3)]

    tables = patterns("table", "list", str(app), "--store", store_at)  # the CLI reads it too
    assert tables.returncode == 0 and "messages_enriched" in tables.stdout, tables.stderr
    again = patterns("run", str(app), "--json", "--store", store_at)
    assert again.returncode == 0
    assert [r["node_id"] for r in json.loads(again.stdout)["runs"]] == ["ingest01"]


def test_manifest_describes_nodes_and_edges() -> None:
    proc = patterns("manifest", str(EXAMPLE))
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    nodes = {n["id"]: n for n in doc["nodes"]}
    assert set(nodes) == {"ingest01", "enrich01", "ustats01", "report01", "feedback",
                          "fbdigest", "chdaily1"}
    params = {p["name"] for p in nodes["ingest01"]["interface"]["parameters"]}
    assert {"batch_size", "api", "token", "since"} <= params
    edges = {(e["from_node"], e["store"], e["to_node"]) for e in doc["edges"]}
    assert ("ingest01", "messages", "enrich01") in edges
    assert ("enrich01", "messages_enriched", "chdaily1") in edges
    sql = nodes["chdaily1"]
    assert sql["kind"] == "sql"
    assert {p["name"]: p["type"] for p in sql["interface"]["parameters"]} == {
        "since": "datetime", "channels": "str"}


@pytest.mark.slow
def test_chat_enrich_served_takes_feedback_over_its_webhook(tmp_path: Path,
                                                            store_at: str) -> None:
    import requests

    from tests.server.conftest import Server

    app = tmp_path / "chat_enrich"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns(".patterns"))
    assert patterns("create", "secret", "demo_token", "t-1").returncode == 0
    assert patterns("create", "secret", "connection.demo_api",
                    '{"base_url": "https://api.example.invalid"}').returncode == 0
    env = {"PATTERNS_STORE": store_at}  # (the server's, and the CLI's beside it)
    server = Server([app], env=env)
    try:
        hooks = json.loads(patterns("list", "webhooks", str(app), "--json", env=env).stdout)
        (hook,) = hooks
        for user, rating in [("ada", 5), ("ada", 3), ("linus", 4)]:
            response = requests.post(hook["url"], json={"user": user, "rating": rating},
                                     timeout=30)
            assert response.status_code == 200, response.text
        # The hourly digest, asked for now instead of waiting for the hour:
        assert patterns("trigger", str(app), "feedback_digest.py", env=env).returncode == 0
        summary = server.wait_for(lambda: (rows := server.rows("chat-enrich",
                                                               "feedback_summary"))
                                  and len(rows) == 2 and rows)
        by_user = {r["user"]: r for r in summary}
        assert by_user["ada"]["average"] == 4.0 and by_user["linus"]["ratings"] == 1
        # The app's own pipeline ran by itself too: messages were fetched and enriched.
        server.wait_for(lambda: len(server.rows("chat-enrich", "messages_enriched")) == 60,
                        timeout=60)
    finally:
        server.stop()
    # (the rows are in the store asked for: a DuckDB file only when that was it)
    assert (app / ".patterns" / "store.duckdb").exists() == store_at.endswith(".duckdb")
