"""Every command finds its app the same way (an optional APP, else the app holding the
current folder), read-only commands go on while graph.yml has problems, runs are shown and
taken by one short id, and misspelled names get a did-you-mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import failed, jsonl, ok, patterns, populate


@pytest.fixture(scope="module")
def small_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = populate(tmp_path_factory.mktemp("finding") / "app", bulk_rows=10)
    (root / "nodes" / "deep").mkdir(parents=True)
    return root


def test_every_command_takes_the_app_from_the_current_folder(small_app: Path) -> None:
    sub = small_app / "nodes" / "deep"
    rows = jsonl(ok(patterns("table", "show", "events", "--format", "jsonl", cwd=sub)).stdout)
    assert [r["n"] for r in rows] == [0, 1, 2, 3, 4]
    assert jsonl(ok(patterns("table", "show", ".", "events", "--format", "jsonl",
                             cwd=sub)).stdout) == rows  # "." is the app holding the folder
    assert jsonl(ok(patterns("table", "show", small_app, "events", "--format", "jsonl",
                             cwd=sub.parents[3])).stdout) == rows  # APP given from outside
    names = {t["name"] for t in json.loads(ok(patterns("table", "list", "--json",
                                                       cwd=sub)).stdout)}
    assert {"events", "bulk", "copied"} <= names
    assert len(json.loads(ok(patterns("table", "versions", "events", "--json",
                                      cwd=sub)).stdout)) == 1
    ok(patterns("table", "export", "events", "-o", "out.jsonl", cwd=sub))
    assert len(jsonl((sub / "out.jsonl").read_text())) == 5
    assert json.loads(ok(patterns("state", "show", "gen.py", "--json", cwd=sub)).stdout) == \
        {"runs": 1}
    statuses = [r["status"] for r in json.loads(ok(patterns("runs", "--json", cwd=sub)).stdout)]
    assert statuses.count("succeeded") == 2 and "failed" in statuses
    assert "about to fail" in ok(patterns("logs", "--node", "broken.py", cwd=sub)).stdout
    assert "3 node(s)" in ok(patterns("validate", cwd=sub)).stdout
    assert json.loads(ok(patterns("manifest", cwd=sub)).stdout)["title"] == "CLI test app"
    assert "gen00001" in ok(patterns("list", "nodes", cwd=sub)).stdout
    assert "■ gen succeeded" in ok(patterns("run", "--quiet", cwd=sub)).stdout


def test_a_command_outside_any_app_says_how_to_name_one(tmp_path: Path) -> None:
    failed(patterns("runs", cwd=tmp_path), "is not inside an app", "give the app folder")
    failed(patterns("table", "show", "events", cwd=tmp_path), "is not inside an app")
    failed(patterns("runs", tmp_path / "nowhere"), "does not exist")


def test_read_only_commands_go_on_while_graph_yml_has_problems(tmp_path: Path) -> None:
    root = populate(tmp_path / "app", bulk_rows=10)
    graph = root / "graph.yml"
    graph.write_text(graph.read_text().replace(
        "stores:", "  - node_file: missing.py\n    id: miss0001\nstores:"))
    warning = "warning: graph.yml has 1 problem (`patterns validate` lists them)"
    for args in (("runs",), ("logs",), ("logs", "--node", "gen.py"), ("table", "list"),
                 ("table", "show", "events"), ("table", "versions", "events"),
                 ("table", "export", "events", "-o", tmp_path / "e.csv"),
                 ("state", "show", "gen.py")):
        result = ok(patterns(*args, cwd=root))
        assert result.stderr.splitlines()[0] == warning + "; showing what the store holds", args
        assert "Traceback" not in result.stderr
    assert "generated 5 events" in patterns("logs", "--node", "gen.py", cwd=root).stdout
    assert "event 4" in patterns("table", "show", "events", cwd=root).stdout
    assert json.loads(patterns("state", "show", "gen.py", "--json", cwd=root).stdout) == \
        {"runs": 1}
    assert (tmp_path / "e.csv").read_text().count("\n") == 6
    # what changes or runs the app still refuses while it has problems
    failed(patterns("run", cwd=root), "missing.py")
    failed(patterns("table", "reset", "events", "-y", cwd=root), "missing.py")


def test_one_short_run_id_everywhere_and_accepted_by_run(tmp_path: Path) -> None:
    root = populate(tmp_path / "app", bulk_rows=10, fail=False)
    docs = json.loads(ok(patterns("runs", "--json", cwd=root)).stdout)
    for doc in docs:
        assert doc["short_id"] == doc["id"][-8:]
    gen = next(d for d in docs if d["node_id"] == "gen00001")
    short = gen["short_id"]
    listed = ok(patterns("runs", cwd=root)).stdout
    assert all(d["short_id"] in listed and d["id"] not in listed for d in docs)
    shown = ok(patterns("logs", "--run", short, cwd=root)).stdout
    assert shown.startswith(f"run {short} of gen ") and gen["id"] not in shown
    assert "generated 5 events" in shown
    assert ok(patterns("logs", "--run", short.lower(), cwd=root)).stdout == shown
    versions = ok(patterns("table", "versions", "events", cwd=root)).stdout
    assert short in versions and gen["id"] not in versions

    again = ok(patterns("run", "--node", "gen.py", cwd=root))  # live lines and summary
    new = json.loads(ok(patterns("runs", "--json", "--limit", "1", cwd=root)).stdout)[0]
    assert f"run {new['short_id']})" in again.stdout  # the live "▶ gen (manual, run ...)"
    summary = again.stdout[again.stdout.index("run(s) in"):]
    assert new["short_id"] in summary and new["id"] not in summary

    shared = gen["id"][:2]  # the time prefix every run of this test shares
    error = failed(patterns("logs", "--run", shared, cwd=root), "matches more than one run")
    assert new["short_id"] in error and "short ids" in error
    failed(patterns("logs", "--run", "ZZZZZZZZ", cwd=root), "no run 'ZZZZZZZZ'")


def test_misspelled_tables_and_nodes_get_a_did_you_mean(small_app: Path) -> None:
    failed(patterns("table", "show", ".", "evnts", cwd=small_app),
           "no table 'evnts'", "did you mean 'events'?")
    failed(patterns("table", "show", "copie", cwd=small_app), "did you mean 'copied'?")
    failed(patterns("state", "show", "gen.pyy", cwd=small_app),
           "no node 'gen.pyy'", "did you mean 'gen.py'?")
    failed(patterns("runs", "--node", "consum.py", cwd=small_app), "did you mean 'consume.py'?")
    failed(patterns("remove", "table", "bluk", "-y", cwd=small_app), "did you mean 'bulk'?")
    failed(patterns("stream", "reset", "consume.py", "sourc", "-y", cwd=small_app),
           "does not read a table 'sourc'", "did you mean 'source'?")
