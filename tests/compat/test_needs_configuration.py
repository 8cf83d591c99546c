"""A problem in one node does not stop the app: the node needs configuration, the rest runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from patterns.engine.secrets import SecretStore
from tests.cli.conftest import patterns
from tests.server.conftest import Server

from .conftest import CompatApp, copy_app

UNCONFIGURED = {"needs_param.py", "extra_value.py", "secret_user.py"}


def test_the_configured_nodes_run_and_the_others_wait(
        compat_app: Callable[[str], CompatApp]) -> None:
    app = compat_app("needs_config")
    result = app.run()
    assert result.ok, [r.error for r in result.runs]
    ran = {r.node_title for r in result.runs}
    assert ran == {"source", "downstream"}  # downstream just has no new input
    assert [r["n"] for r in app.rows("numbers")] == [0, 1, 2]
    assert app.rows("enriched") == [] and app.rows("final") == []
    skipped = {node.rel_file: why for node, why in result.skipped}
    assert set(skipped) == UNCONFIGURED
    assert "needs a value for parameter 'api_base'" in skipped["needs_param.py"]
    assert "declares no parameter 'colour'" in skipped["extra_value.py"]
    assert "secret 'api_token', which is not set" in skipped["secret_user.py"]
    assert "patterns create secret api_token VALUE" in skipped["secret_user.py"]


def test_giving_the_secret_lets_its_node_run(compat_app: Callable[[str], CompatApp]) -> None:
    SecretStore().set("api_token", "t0k3n")
    app = compat_app("needs_config")
    assert app.run().ok
    assert [r["token_length"] for r in app.rows("authed")] == [5, 5, 5]


def test_validate_lists_errors_warnings_and_configuration_apart(tmp_path: Path) -> None:
    root = copy_app("needs_config", tmp_path)
    result = patterns("validate", root, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["valid"] is True and report["problems"] == [] and report["warnings"] == []
    found = {(p["node"], p["file"], p["line"]) for p in report["needs_configuration"]}
    assert found == {("needs_param.py", "graph.yml", 5),  # the function's entry
                     ("extra_value.py", "graph.yml", 10),  # colour: red
                     ("secret_user.py", "graph.yml", 14)}  # token: ${{ api_token }}
    fixes = " ".join(p["fix"] for p in report["needs_configuration"])
    assert "--param api_base=VALUE" in fixes and "patterns create secret api_token" in fixes
    text = patterns("validate", root)
    assert text.returncode == 0
    assert "needs configuration (3):" in text.stdout
    assert "3 node(s) need configuration and will not run" in text.stdout
    strict = patterns("validate", root, "--strict")
    assert strict.returncode == 1


def test_patterns_run_runs_the_rest_and_says_what_waits(tmp_path: Path) -> None:
    root = copy_app("needs_config", tmp_path)
    result = patterns("run", root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped needs_param.py: needs configuration" in result.stdout
    report = json.loads(patterns("run", root, "--json").stdout)
    skipped = {s["file"]: s["why"] for s in report["skipped"]}
    assert set(skipped) == UNCONFIGURED
    assert skipped["needs_param.py"].startswith("needs configuration: graph.yml:5")


def test_a_broken_graph_is_still_an_error(tmp_path: Path) -> None:
    root = copy_app("needs_config", tmp_path)
    graph = root / "graph.yml"
    graph.write_text(graph.read_text().replace("  - table: final\n", ""))
    result = patterns("validate", root)
    assert result.returncode == 1
    assert "writes table 'final', which is not a store" in result.stderr


def test_the_api_shows_what_a_node_needs(tmp_path: Path,
                                         serve: Callable[..., Server]) -> None:
    root = copy_app("needs_config", tmp_path)
    server = serve(root)
    nodes = {n["file"]: n for n in server.get("/apps/partly-configured/nodes")}
    assert nodes["source.py"]["needs_configuration"] == []
    [need] = nodes["needs_param.py"]["needs_configuration"]
    assert (need["file"], need["line"]) == ("graph.yml", 5)
    assert "'api_base'" in need["message"] and "--param api_base=VALUE" in need["fix"]
    server.wait_for(lambda: server.rows("partly-configured", "numbers"), what="numbers")
    assert server.runs("partly-configured", "par0c3d4") == []
    schema = server.http.get(server.api("/openapi.json"), timeout=30).json()
    fields = schema["components"]["schemas"]["NodeOut"]["properties"]
    assert "needs configuration" in fields["needs_configuration"]["description"]
    # setting the secret through the server lets its node run, without a restart
    response = server.http.put(server.api("/secrets/api_token"), json={"value": "t0k3n"},
                               timeout=30)
    assert response.status_code == 200, response.text
    node = server.get("/apps/partly-configured/nodes/sec0g7h8")
    assert node["needs_configuration"] == []
    authed = server.wait_for(lambda: server.rows("partly-configured", "authed"), what="authed")
    assert [r["token_length"] for r in authed] == [5, 5, 5]


def test_a_manual_run_given_the_missing_value_runs(
        compat_app: Callable[[str], CompatApp]) -> None:
    app = compat_app("needs_config")
    assert app.run().ok
    node = app.engine.app.node("needs_param.py")
    refused, _ = app.engine.run_node(node, "manual")
    assert refused.status == "failed" and "needs configuration" in refused.error
    record, _ = app.engine.run_node(node, "manual", {"api_base": "https://api.test"})
    assert record.status == "succeeded", record.error
    assert [r["url"] for r in app.rows("enriched")] == [
        "https://api.test/0", "https://api.test/1", "https://api.test/2"]
