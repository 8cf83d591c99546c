"""``patterns create app|node|table|webhook|secret`` and ``patterns list secrets``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.cli.conftest import failed, jsonl, ok, patterns


def graph(app: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((app / "graph.yml").read_text()))


def test_create_app_then_a_node_that_runs(tmp_path: Path) -> None:
    app = tmp_path / "shop"
    result = ok(patterns("create", "app", app, "--title", "My Shop"))
    assert f"next, in the app's folder (cd {app})" in result.stdout
    assert "patterns run " in result.stdout
    assert graph(app) == {"title": "My Shop", "functions": [], "stores": []}
    failed(patterns("create", "app", app), "already exists")

    result = ok(patterns("create", "node", app, "ingest.py"))
    assert "writes table ingest_records" in result.stdout
    doc = graph(app)
    [entry] = doc["functions"]
    assert entry["node_file"] == "ingest.py"
    assert re.fullmatch(r"[a-z0-9]{8}", entry["id"])
    assert doc["stores"] == [{"table": "ingest_records"}]
    source = (app / "ingest.py").read_text()
    assert 'Table("ingest_records", "w")' in source
    assert "Parameter(" in source and "State()" in source  # shown in comments

    ok(patterns("validate", app))
    ok(patterns("run", app, "--quiet"))
    [row] = jsonl(ok(patterns("table", "show", app, "ingest_records", "--format", "jsonl")).stdout)
    assert row["message"] == "hello from ingest.py"
    assert json.loads(ok(patterns("runs", app, "--json")).stdout)[0]["node_id"] == entry["id"]


def test_create_node_from_inside_the_app_with_id_and_trigger(tmp_path: Path) -> None:
    app = tmp_path / "app"
    ok(patterns("create", "app", app))
    ok(patterns("create", "node", ".", "nodes/daily.py", "--id", "daily001",
                "--trigger", "0 6 * * *", cwd=app))
    [entry] = graph(app)["functions"]
    assert entry == {"node_file": "nodes/daily.py", "id": "daily001", "trigger": "0 6 * * *"}
    assert (app / "nodes" / "daily.py").is_file()
    ok(patterns("run", app, "--node", "daily001", "--quiet"))
    assert len(jsonl(patterns("table", "show", app, "daily_records", "--format", "jsonl").stdout)) == 1


def test_create_node_refuses_to_overwrite_and_bad_input(tmp_path: Path) -> None:
    app = tmp_path / "app"
    ok(patterns("create", "app", app))
    (app / "mine.py").write_text("print('my own code')\n")
    assert "registered mine.py" in ok(patterns("create", "node", app, "mine.py")).stdout
    assert (app / "mine.py").read_text() == "print('my own code')\n"  # never overwritten

    ok(patterns("create", "node", app, "a.py"))
    failed(patterns("create", "node", app, "a.py"), "already a node")
    failed(patterns("create", "node", app, "b.py", "--trigger", "sometimes"),
           "trigger 'sometimes'")
    failed(patterns("create", "node", app, "c.py", "--id", "Not_Valid"), "node id")
    failed(patterns("create", "node", app, "d.txt"), "not a .py or .sql file")
    failed(patterns("create", "node", app, "../outside.py"), "outside the app folder")
    assert sorted(p.name for p in app.glob("*.py")) == ["a.py", "mine.py"]  # nothing left behind
    assert len(graph(app)["functions"]) == 2  # mine.py and a.py
    failed(patterns("create", "node", tmp_path / "nowhere", "x.py"), "no graph.yml")


def test_create_a_sql_node_that_runs(tmp_path: Path) -> None:
    app = tmp_path / "app"
    ok(patterns("create", "app", app))
    out = ok(patterns("create", "node", app, "daily.sql")).stdout
    assert "writes table daily_records" in out
    (entry,) = graph(app)["functions"]
    assert entry["node_file"] == "daily.sql"
    assert entry["outputs"] == {"output_table": "daily_records"}
    ok(patterns("run", app))
    shown = ok(patterns("table", "show", app, "daily_records", "--format", "jsonl")).stdout
    assert json.loads(shown.splitlines()[0])["greeting"] == "hello"


def test_create_table_and_webhook(tmp_path: Path) -> None:
    app = tmp_path / "app"
    ok(patterns("create", "app", app))
    ok(patterns("create", "table", app, "orders"))
    failed(patterns("create", "table", app, "orders"), "already exists")
    failed(patterns("create", "table", app, "bad name"), "not valid")
    ok(patterns("create", "webhook", app, "signups"))
    doc = graph(app)
    assert doc["stores"] == [{"table": "orders"}, {"table": "signups"}]
    [hook] = doc["functions"]
    assert hook["webhook"] == "signups" and re.fullmatch(r"[a-z0-9]{8}", hook["id"])
    ok(patterns("validate", app))


def test_secrets_are_stored_but_never_printed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"PATTERNS_HOME": str(home)}
    assert "no secrets yet" in ok(patterns("list", "secrets", env=env)).stdout
    result = ok(patterns("create", "secret", "api_key", "s3cr3t-value", env=env))
    assert "s3cr3t-value" not in result.stdout + result.stderr
    assert "${{ api_key }}" in result.stdout
    result = ok(patterns("create", "secret", "db_password", env=env, input="hunter2-pw\n"))
    assert "hunter2-pw" not in result.stdout + result.stderr

    for args in (["list", "secrets"], ["list", "secrets", "--json"]):
        result = ok(patterns(*args, env=env))
        assert "s3cr3t-value" not in result.stdout and "hunter2-pw" not in result.stdout
    assert ok(patterns("list", "secrets", env=env)).stdout.split() == ["api_key", "db_password"]
    assert json.loads(patterns("list", "secrets", "--json", env=env).stdout) == [
        "api_key", "db_password"]
    assert b"s3cr3t-value" not in (home / "secrets.enc").read_bytes()  # encrypted at rest
    failed(patterns("create", "secret", "bad name!", "x", env=env), "not valid")
    failed(patterns("create", "secret", "connection.db", "not json", env=env), "JSON object")
