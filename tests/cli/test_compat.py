"""The original devkit's command forms work on an app in the original format: `create node
FILE --type/--title` with the app found above the file, `trigger PATH`, `list
apps|nodes|versions|secrets|webhooks`, `delete`, `config`; the hosted-service commands say in
one line what to use instead. The documented local forms keep working."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from tests.cli.conftest import failed, ok, patterns

APPS = Path(__file__).parent.parent / "apps"


def original_app(tmp_path: Path) -> Path:
    return Path(shutil.copytree(APPS / "original_subgraph", tmp_path / "orders"))


def graph(root: Path) -> dict[str, object]:
    return dict(yaml.safe_load((root / "graph.yml").read_text()))


def test_create_node_in_the_original_forms(tmp_path: Path) -> None:
    root = original_app(tmp_path)
    (root / "nodes").mkdir()
    ok(patterns("create", "node", "nodes/ingest.py", "--title", "Ingest", cwd=root))
    ok(patterns("create", "node", "-t", "table", "my_table", cwd=root / "nodes"))
    ok(patterns("create", "node", "--type", "webhook", "events", "--app", root))
    out = ok(patterns("create", "node", "--type", "component", "patterns/date-table@v1",
                      "--title", "Dates", cwd=root)).stdout
    assert "added component patterns/date-table@v1" in out and "table(s) dates" in out
    ok(patterns("create", "node", root, "later.sql"))  # the local form
    ok(patterns("create", "node", "extra/graph.yml", cwd=root))  # a subgraph
    functions = graph(root)["functions"]
    assert isinstance(functions, list)
    entries = {(f.get("node_file") or f.get("webhook") or f.get("uses")): f for f in functions}
    assert entries["nodes/ingest.py"]["title"] == "Ingest"
    assert entries["patterns/date-table@v1"]["title"] == "Dates"
    assert {"events", "later.sql", "extra/graph.yml"} <= set(entries)
    stores = {s["table"] for s in graph(root)["stores"]}  # type: ignore[attr-defined]
    assert {"my_table", "events", "dates", "ingest_records", "later_records"} <= stores
    run = ok(patterns("run", root)).stdout
    assert "Dates / make_dates" in run and "failed" not in run
    failed(patterns("create", "node", "-t", "table", "x", "--title", "T", cwd=root),
           "a table has no title")
    failed(patterns("create", "node", "--type", "component", "acme/none@v1", cwd=root),
           "component `acme/none@v1` is not installed", "patterns component add")
    failed(patterns("create", "node", "x.py", cwd=tmp_path), "is not inside an app")


def test_trigger_by_node_path_id_or_app_and_node(tmp_path: Path) -> None:
    root = original_app(tmp_path)
    out = ok(patterns("trigger", root / "make_orders.py")).stdout
    assert "Make orders" in out and "succeeded" in out
    out = ok(patterns("trigger", "cleaning/dedupe.py", cwd=root)).stdout  # inside a subgraph
    assert "succeeded" in out
    ok(patterns("trigger", "--app", root, "--node-id", "mkorders"))
    ok(patterns("trigger", root, "make_orders.py"))  # the local form
    runs = ok(patterns("runs", root, "--json")).stdout
    assert runs.count('"node_id": "mkorders"') == 3
    failed(patterns("trigger", cwd=root), "name one node")


def test_list_nodes_versions_apps_and_hosted_commands(tmp_path: Path) -> None:
    root = original_app(tmp_path)
    nodes = json.loads(ok(patterns("list", "nodes", root, "--json")).stdout)
    assert [n["id"] for n in nodes if n["inside"] is None] == ["mkorders", "cleaning", "report"]
    assert {n["file"] for n in nodes if n["inside"] == "cleaning"} == {
        "cleaning/dedupe.py", "cleaning/keep_large.py", "cleaning/count.sql"}
    text = ok(patterns("list", "nodes", cwd=root)).stdout
    assert "\n  " in text and "cleaning/keep_large.py" in text
    versions = json.loads(ok(patterns("list", "versions", root, "--json")).stdout)
    assert versions["versions"][0]["current"] is True
    apps = ok(patterns("list", "apps", cwd=tmp_path, env={"PATTERNS_SERVER": ""})).stdout
    assert "orders-subgraph\tOrders with a cleaning subgraph\t3 node(s)" in apps
    ok(patterns("list", "secrets"))
    ok(patterns("list", "webhooks", root))
    for command in (("login",), ("logout",), ("list", "organizations"),
                    ("config", "-o", "acme")):
        result = ok(patterns(*command))
        assert len(result.stdout.strip().splitlines()) == 1 and not result.stderr
        assert "hosted service" in result.stdout or "no accounts" in result.stdout


def test_config_and_delete(tmp_path: Path, patterns_home: Path) -> None:
    shown = json.loads(ok(patterns("config", "--json")).stdout)
    assert shown["patterns home"] == str(patterns_home)
    assert shown["components"] == str(patterns_home / "components")
    root = original_app(tmp_path)
    ok(patterns("run", root))
    refused = patterns("delete", root, input="n\n")
    assert refused.returncode == 1 and (root / ".patterns" / "store.duckdb").exists()
    out = ok(patterns("delete", root, "--force")).stdout
    assert "its files are kept" in out
    assert not (root / ".patterns").exists() and (root / "graph.yml").exists()
    assert "Make orders" in ok(patterns("run", root)).stdout  # and the app runs afresh
