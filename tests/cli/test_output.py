"""Readable output (issue 16, items 5 and 6): tables that fit the terminal at 80 and 200
columns, one style across commands, plain and complete when piped; a traceback once per
run; runs labelled by why they ran; SQL nodes' rows read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli.conftest import failed, ok, patterns, populate, write_app
from tests.cli.terminal import in_terminal

KEY_COLUMNS = ("started", "node", "trigger", "status", "read", "written", "time", "run")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gen (5 events, 2,000 bulk rows), consume, then a failed run of broken."""
    return populate(tmp_path_factory.mktemp("output") / "app", bulk_rows=2000)


def _row(text: str, word: str) -> str:
    return next(line for line in text.splitlines() if re.search(rf"\b{word}\b", line)
                and not line.startswith(" "))


@pytest.mark.parametrize("columns", [80, 200])
def test_runs_fit_the_terminal_and_key_columns_stay_whole(app: Path, columns: int) -> None:
    runs = json.loads(ok(patterns("runs", app, "--json")).stdout)
    screen = in_terminal("runs", app, columns=columns)
    assert screen.code == 0, screen.text
    assert all(len(line) <= columns for line in screen.lines), screen.text
    header = _row(screen.text, "started")
    assert re.search(r"started\s+node\s+trigger\s+status\s+read\s+written\s+time\s+run", header)
    gen = _row(screen.text, "gen")
    assert "2,005" in gen  # thousands separators; right-aligned under the header
    assert gen.index("2,005") + len("2,005") == header.index("written") + len("written")
    for run in runs:
        assert run["id"][-8:] in screen.text  # the run ids, whole
    broken = _row(screen.text, "broken")
    assert "failed" in broken and "…" not in broken
    if columns == 80:  # no room for the error in the row: it goes below, labelled
        assert "ValueError" not in broken
        assert re.search(rf"{runs[0]['id'][-8:]} broken: ValueError: boom \(broken.py, line 2\)",
                         screen.text)
    else:
        assert "ValueError: boom (broken.py, line 2)" in broken


def test_runs_piped_are_plain_and_complete(app: Path) -> None:
    out = ok(patterns("runs", app, env={"COLUMNS": "40"})).stdout
    assert "\x1b[" not in out and "…" not in out
    assert all(line == line.rstrip() for line in out.splitlines())
    assert "ValueError: boom (broken.py, line 2)" in _row(out, "broken")  # in its row, whole


def test_a_long_error_is_cut_in_the_row_and_whole_with_full(tmp_path: Path) -> None:
    root = populate(tmp_path / "app", bulk_rows=1, fail=False)
    (root / "broken.py").write_text("raise ValueError('x' * 300)\n")
    patterns("run", root, "--node", "broken.py", "--quiet")
    screen = in_terminal("runs", root, columns=200)
    assert "…" in _row(screen.text, "broken") and "x" * 300 not in screen.text
    assert "`--full` shows them whole" in screen.text
    full = in_terminal("runs", root, "--full", columns=200)
    assert "ValueError: " + "x" * 150 in full.text.replace("\n", "")  # wrapped, not cut
    assert "…" not in _row(full.text, "broken")


@pytest.mark.parametrize("columns", [80, 200])
def test_table_show_with_types_vertical_when_too_wide(app: Path, columns: int) -> None:
    screen = in_terminal("table", "show", app, "events", columns=columns)
    assert screen.code == 0, screen.text
    assert all(len(line) <= columns for line in screen.lines), screen.text
    if columns == 80:  # a row of events is wider than 80 columns: one block per record
        assert "── record 1 " in screen.text and "── record 5 " in screen.text
        assert re.search(r"meta\s+json\s+\{\"tags\":\[\"a\",\"b\"\],\"depth\":\{\"k\":0\}\}",
                         screen.text)
        assert re.search(r"at\s+timestamptz\s+2024-01-02T03:04:00\+00:00", screen.text)
    else:
        names, kinds = screen.lines[0].split(), screen.lines[1].split()
        assert names[:6] == ["n", "name", "score", "ok", "meta", "at"]
        assert kinds[:6] == ["int", "text", "float", "bool", "json", "timestamptz"]
        assert "record 1" not in screen.text
    assert "events version 1: rows 1 to 5 of 5" in screen.text


def test_table_show_columns_and_layout_flags(app: Path) -> None:
    screen = in_terminal("table", "show", app, "events", "--columns", "name,n", columns=80)
    assert screen.lines[0].split() == ["name", "n"] and screen.lines[1].split() == ["text", "int"]
    assert "event 4" in screen.text and "score" not in screen.text
    vertical = in_terminal("table", "show", app, "events", "--columns", "n", "--vertical",
                           "--limit", "1", columns=200)
    assert re.search(r"n\s+int\s+0", vertical.text) and "── record 1 " in vertical.text
    wide = in_terminal("table", "show", app, "events", "--horizontal", columns=80)
    assert "record 1" not in wide.text and "…" in wide.text  # cut to fit, by request
    assert "values are cut to fit: --vertical shows them whole" in wide.text
    assert all(len(line) <= 80 for line in wide.lines)
    csv = ok(patterns("table", "show", app, "events", "--columns", "n,name", "--format", "csv"))
    assert csv.stdout.splitlines()[:2] == ["n,name", "0,event 0"]
    error = failed(patterns("table", "show", app, "events", "--columns", "n,nmae"))
    assert "table events has no column 'nmae': did you mean 'name'?" in error


def test_table_show_piped_is_complete(app: Path) -> None:
    out = ok(patterns("table", "show", app, "events", env={"COLUMNS": "40"})).stdout
    assert "\x1b[" not in out and "…" not in out and "record 1" not in out
    assert '{"tags":["a","b"],"depth":{"k":4}}' in out


@pytest.mark.parametrize("columns", [80, 200])
def test_table_list_with_schema(app: Path, columns: int) -> None:
    screen = in_terminal("table", "list", app, "--schema", columns=columns)
    assert all(len(line) <= columns for line in screen.lines), screen.text
    bulk = _row(screen.text, "bulk")
    assert re.search(r"bulk\s+1\s+2,000\s+2\b", bulk)  # version, rows, columns
    assert "i int" in bulk
    events = _row(screen.text, "events")
    whole = "n int, name text, score float, ok bool, meta json, at timestamptz"
    assert (whole in events) == (columns == 200)
    if columns == 80:
        assert "…" in events and "`--json` has them whole" in screen.text
    piped = ok(patterns("table", "list", app, "--schema")).stdout
    assert whole in _row(piped, "events")
    docs = json.loads(ok(patterns("table", "list", app, "--schema", "--json")).stdout)
    assert {"name": "i", "kind": "int"} in next(d for d in docs if d["name"] == "bulk")["schema"]


def test_versions_in_the_same_style(app: Path) -> None:
    screen = in_terminal("table", "versions", app, "events", columns=80)
    assert re.search(r"version\s+created\s+reason\s+run\s+kept", screen.text)
    assert re.search(r"1 \(current\)\s+\S+", screen.text)


@pytest.mark.parametrize("quiet", [False, True])
def test_a_traceback_appears_once_per_run(app: Path, quiet: bool) -> None:
    screen = in_terminal("run", app, "--node", "broken.py", *(["--quiet"] if quiet else []),
                         columns=120)
    assert screen.code == 1
    assert screen.text.count("Traceback (most recent call last)") == 1, screen.text
    assert screen.text.count('raise ValueError("boom")') == 1, screen.text


SQL_NODE = """
select count(*) as n from {{ Table("events") }}
"""


def test_runs_say_why_they_ran_and_sql_nodes_count_rows_read(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app", bulk_rows=1)
    graph = (root / "graph.yml").read_text()
    graph = graph.replace("id: gen00001", "id: gen00001\n    trigger: manual")
    (root / "graph.yml").write_text(graph.replace(
        "stores:", "  - node_file: count.sql\n    id: count001\n    inputs:\n"
                   "      events: events\n    outputs:\n      output_table: counts\n"
                   "stores:\n  - table: counts"))
    (root / "count.sql").write_text(SQL_NODE)

    def why(limit: int) -> dict[str, str]:
        docs = json.loads(ok(patterns("runs", root, "--json", "--limit", limit)).stdout)
        return {d["node_title"]: d["trigger"] for d in reversed(docs)}

    ok(patterns("trigger", root, "gen.py"))
    ok(patterns("run", root, "--quiet"))  # consume and count never ran
    assert why(2) == {"consume": "first run", "count": "first run"}
    ok(patterns("trigger", root, "gen.py"))
    ok(patterns("run", root, "--quiet"))  # gen wrote rows since their last runs
    assert why(2) == {"consume": "out of date", "count": "out of date"}
    ok(patterns("run", root, "--node", "gen.py", "--quiet"))  # asked for; the rest follows
    assert why(3) == {"gen": "manual", "consume": "upstream", "count": "upstream"}
    assert ok(patterns("run", root)).stdout.strip() == \
        "nothing to run: every node is up to date"

    count = json.loads(ok(patterns("runs", root, "--json", "--node", "count.sql")).stdout)
    assert [d["rows_read"] for d in count] == [{"events": 15}, {"events": 10}, {"events": 5}]
    shown = ok(patterns("runs", root, "--node", "count.sql")).stdout
    assert re.search(r"count\s+upstream\s+succeeded\s+15\s+1\b", shown)
