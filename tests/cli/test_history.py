"""``patterns runs``, ``patterns logs``, ``patterns state``, ``patterns stream reset``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.conftest import failed, jsonl, ok, patterns

LINE = re.compile(r"^\d\d:\d\d:\d\d (\w+) \| (.*)$")


def runs_of(app: Path, *args: str) -> list[dict[str, object]]:
    return list(json.loads(ok(patterns("runs", app, "--json", *args)).stdout))


def test_runs_newest_first_with_status_trigger_rows_and_error(app: Path) -> None:
    runs = runs_of(app)
    assert [(r["node_title"], r["status"], r["trigger"]) for r in runs] == [
        ("broken", "failed", "manual"), ("consume", "succeeded", "upstream"),
        ("gen", "succeeded", "first run")]
    assert "ValueError: boom" in str(runs[0]["error"])
    assert runs[1]["rows_read"] == {"events": 5} and runs[1]["rows_written"] == {"copied": 5}
    assert [r["node_id"] for r in runs_of(app, "--node", "gen.py")] == ["gen00001"]
    assert [r["node_id"] for r in runs_of(app, "--node", "cons0001")] == ["cons0001"]
    assert len(runs_of(app, "--limit", "1")) == 1

    text = ok(patterns("runs", app)).stdout
    assert re.search(r"broken\s+manual\s+failed", text)
    assert "ValueError: boom" in text
    assert str(runs[2]["id"])[-8:] in text


def test_runs_of_unknown_node(app: Path) -> None:
    failed(patterns("runs", app, "--node", "nope.py"), "no node 'nope.py'",
           "gen00001 (gen.py)")


def test_logs_of_the_latest_run_and_of_a_node(app: Path) -> None:
    out = ok(patterns("logs", app)).stdout.splitlines()
    assert "failed" in out[0]
    lines = [m.groups() for m in map(LINE.match, out) if m]
    # stdout and stderr are separate pipes: their lines may interleave either way.
    assert ("broken", "about to fail") in lines
    assert ("broken", "ValueError: boom") in lines
    assert "ValueError: boom (broken.py, line 2)" in out[-1]  # the run's error closes it

    out = ok(patterns("logs", app, "--node", "gen.py")).stdout.splitlines()
    assert sorted(m.groups() for m in map(LINE.match, out) if m) == [
        ("gen", "a warning"), ("gen", "generated 5 events, run 1")]


def test_logs_print_stderr_in_red(app: Path) -> None:
    out = ok(patterns("logs", app, "--node", "gen.py", env={"FORCE_COLOR": "1"})).stdout
    warning = next(line for line in out.splitlines() if "a warning" in line)
    generated = next(line for line in out.splitlines() if "generated 5" in line)
    assert "\x1b[31ma warning" in warning
    assert "\x1b[31m" not in generated


def test_logs_of_a_run_by_id_prefix_or_suffix(app: Path) -> None:
    consume = runs_of(app, "--node", "consume.py")[0]
    run_id = str(consume["id"])
    for key in (run_id, run_id[:16], run_id[-8:], run_id[-8:].lower()):
        doc = json.loads(ok(patterns("logs", app, "--run", key, "--json")).stdout)
        assert doc["run"]["id"] == run_id
        assert [(line["stream"], line["text"]) for line in doc["lines"]] == [
            ("stdout", "consumed 5")]
    failed(patterns("logs", app, "--run", "ZZZZ"), "no run 'ZZZZ'", "patterns runs")
    failed(patterns("logs", app, "--run", run_id, "--node", "gen.py"), "not of node gen.py")
    failed(patterns("logs", app, "--run", run_id[:3]), "matches more than one run")


def test_state_show(app: Path) -> None:
    assert json.loads(ok(patterns("state", "show", app, "gen.py", "--json")).stdout) == {
        "runs": 1}
    assert '"runs": 1' in ok(patterns("state", "show", app, "gen00001")).stdout
    assert json.loads(ok(patterns("state", "show", app, "consume.py", "--json")).stdout) == {}
    assert "has no state" in ok(patterns("state", "show", app, "consume.py")).stdout
    failed(patterns("state", "show", app, "nope"), "no node 'nope'", "valid nodes are")


def test_state_reset_clears_state(fresh_app: Path) -> None:
    refused = patterns("state", "reset", fresh_app, "gen.py", input="n\n")
    assert refused.returncode == 1 and "Aborted" in refused.stderr
    assert json.loads(patterns("state", "show", fresh_app, "gen.py", "--json").stdout) == {
        "runs": 1}

    assert "cleared" in ok(patterns("state", "reset", fresh_app, "gen.py", "--yes")).stdout
    assert json.loads(patterns("state", "show", fresh_app, "gen.py", "--json").stdout) == {}
    assert "nothing to reset" in ok(patterns("state", "reset", fresh_app, "gen.py")).stdout
    # The next run starts from an empty State(): it counts 1 again, not 2.
    ok(patterns("run", fresh_app, "--node", "gen.py", "--quiet"))
    assert json.loads(patterns("state", "show", fresh_app, "gen.py", "--json").stdout) == {
        "runs": 1}


def test_stream_reset_makes_the_node_consume_everything_again(fresh_app: Path) -> None:
    def consume() -> dict[str, object]:
        runs = json.loads(ok(patterns("run", fresh_app, "--node", "consume.py", "--json")).stdout)
        return dict(runs["runs"][0])

    assert consume()["rows_read"] in ({}, {"events": 0})  # up to date: nothing new

    result = ok(patterns("stream", "reset", fresh_app, "consume.py", "events", "--yes"))
    assert "from the start" in result.stdout
    assert consume()["rows_read"] == {"events": 5}
    copied = jsonl(patterns("table", "show", fresh_app, "copied", "--format", "jsonl").stdout)
    assert [r["n"] for r in copied] == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]

    # By the node's port name ("source", bound to events in graph.yml), after asking.
    result = patterns("stream", "reset", fresh_app, "cons0001", "source", input="y\n")
    assert ok(result).stdout.startswith("Make node consume.py consume events again")
    assert consume()["rows_read"] == {"events": 5}


def test_errors_for_bad_nodes_tables_and_runs(fresh_app: Path) -> None:
    failed(patterns("logs", fresh_app, "--node", "broken.py"), "node broken.py has no runs yet")
    failed(patterns("logs", fresh_app, "--node", "nope"), "no node 'nope'")
    failed(patterns("stream", "reset", fresh_app, "consume.py", "copied", "--yes"),
           "does not read a table 'copied'", "source (table events)")
    failed(patterns("stream", "reset", fresh_app, "nope.py", "events", "--yes"),
           "no node 'nope.py'")
    refused = patterns("stream", "reset", fresh_app, "consume.py", "events", input="n\n")
    assert refused.returncode == 1
    consumed = json.loads(ok(patterns("run", fresh_app, "--node", "consume.py", "--json")).stdout)
    assert consumed["runs"][0]["rows_read"] in ({}, {"events": 0})  # the position was kept
