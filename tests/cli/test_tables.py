"""``patterns table list|show|export|reset|versions`` on a real, populated app."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

from tests.cli.conftest import BULK_ROWS, failed, jsonl, ok, patterns, write_app

AT = dt.datetime(2024, 1, 2, 3, 4, 0, tzinfo=dt.UTC)


def test_list_shows_every_table_with_version_rows_and_columns(app: Path) -> None:
    tables = {t["name"]: t for t in json.loads(ok(patterns("table", "list", app, "--json")).stdout)}
    assert set(tables) == {"events", "bulk", "copied", "later"}
    events = tables["events"]
    assert (events["version"], events["rows"], events["exists"]) == (1, 5, True)
    assert events["columns"] == 7  # n, name, score, ok, meta, at, patterns_id
    assert dt.datetime.fromisoformat(events["last_commit"]).tzinfo is not None
    assert tables["bulk"]["rows"] == BULK_ROWS
    assert tables["later"] == {"name": "later", "version": None, "rows": 0, "columns": 0,
                               "last_commit": None, "exists": False}
    text = ok(patterns("table", "list", app)).stdout
    assert "events" in text and "not written yet" in text


def test_show_jsonl_round_trips_values(app: Path) -> None:
    rows = jsonl(ok(patterns("table", "show", app, "events", "--format", "jsonl")).stdout)
    assert [r["n"] for r in rows] == [0, 1, 2, 3, 4]
    first = rows[1]
    assert first["meta"] == {"tags": ["a", "b"], "depth": {"k": 1}}  # an object, not a string
    assert dt.datetime.fromisoformat(first["at"]) == AT.replace(second=1)
    assert first["at"] == "2024-01-02T03:04:01+00:00"
    assert (first["name"], first["score"], first["ok"]) == ("event 1", 0.5, False)
    assert len(first["patterns_id"]) == 26


def test_show_limit_and_offset(app: Path) -> None:
    out = ok(patterns("table", "show", app, "events", "--format", "jsonl", "--limit", "2",
                      "--offset", "1")).stdout
    assert [r["n"] for r in jsonl(out)] == [1, 2]
    many = ok(patterns("table", "show", app, "bulk", "--format", "jsonl")).stdout
    assert len(jsonl(many)) == 20  # the default limit


def test_show_csv_has_a_header_and_json_text(app: Path) -> None:
    out = ok(patterns("table", "show", app, "events", "--format", "csv")).stdout
    assert out.splitlines()[0] == "n,name,score,ok,meta,at,patterns_id"
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 5
    assert json.loads(rows[2]["meta"]) == {"tags": ["a", "b"], "depth": {"k": 2}}
    assert rows[2]["at"] == "2024-01-02T03:04:02+00:00"
    assert rows[2]["ok"] == "true"


def test_show_table_prints_a_table(app: Path) -> None:
    out = ok(patterns("table", "show", app, "events")).stdout
    assert "event 3" in out and "patterns_id" in out
    assert "events version 1: rows 1 to 5 of 5" in out


def test_unknown_table_lists_the_tables(app: Path) -> None:
    for command in (["show"], ["export", "--output", str(app / "x.csv")], ["versions"]):
        result = patterns("table", command[0], app, "nope", *command[1:])
        failed(result, "no table 'nope'", "its tables are bulk, copied, events")
    failed(patterns("table", "show", app, "later"), "table 'later' has no data yet", "run")


def test_missing_store_says_run_it_first(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app")
    for args in (["table", "list", root], ["table", "show", root, "events"],
                 ["table", "reset", root, "events", "--yes"], ["runs", root], ["logs", root],
                 ["state", "show", root, "gen.py"]):
        failed(patterns(*args), "no store yet", "run it first")
    assert not (root / ".patterns" / "store.duckdb").exists()
    failed(patterns("table", "list", root, "--store", tmp_path / "other.duckdb"),
           f"({tmp_path / 'other.duckdb'})", "run it first")


def test_export_all_rows_in_each_format(app: Path, tmp_path: Path) -> None:
    shown = ok(patterns("table", "show", app, "events", "--format", "jsonl")).stdout
    result = ok(patterns("table", "export", app, "events", "--format", "jsonl",
                         "--output", tmp_path / "events.jsonl"))
    assert "exported 5 row(s)" in result.stderr
    assert (tmp_path / "events.jsonl").read_text() == shown

    ok(patterns("table", "export", app, "bulk", "--output", tmp_path / "bulk.csv"))
    lines = (tmp_path / "bulk.csv").read_text().splitlines()
    assert lines[0] == "i,patterns_id"
    assert len(lines) == BULK_ROWS + 1
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(BULK_ROWS))

    import pyarrow.parquet as pq

    ok(patterns("table", "export", app, "bulk", "--format", "parquet",
                "--output", tmp_path / "bulk.parquet"))
    table = pq.read_table(tmp_path / "bulk.parquet")
    assert table.num_rows == BULK_ROWS
    assert table.column("i").to_pylist() == list(range(BULK_ROWS))
    ok(patterns("table", "export", app, "events", "-o", tmp_path / "events.parquet"))
    assert pq.read_table(tmp_path / "events.parquet").column("n").to_pylist() == [0, 1, 2, 3, 4]


def test_export_needs_a_known_format(app: Path, tmp_path: Path) -> None:
    failed(patterns("table", "export", app, "events", "--output", tmp_path / "events.txt"),
           "pass --format csv, jsonl or parquet")
    assert not list(tmp_path.iterdir())


def test_versions(app: Path) -> None:
    docs = json.loads(ok(patterns("table", "versions", app, "events", "--json")).stdout)
    assert [(d["version"], d["reason"], d["current"], d["available"]) for d in docs] == [
        (1, "created", True, True)]
    failed(patterns("table", "show", app, "events", "--version", "7"), "no version 7",
           "versions kept: 1")


def test_reset_asks_then_starts_a_new_empty_version(fresh_app: Path) -> None:
    result = patterns("table", "reset", fresh_app, "events", input="n\n")
    assert result.returncode == 1 and "Reset table events (5 row(s)" in result.stdout
    assert "Aborted" in result.stderr
    assert len(jsonl(patterns("table", "show", fresh_app, "events", "--format", "jsonl").stdout)) == 5

    ok(patterns("table", "reset", fresh_app, "events", input="y\n"))
    assert jsonl(ok(patterns("table", "show", fresh_app, "events", "--format", "jsonl")).stdout) == []
    versions = json.loads(ok(patterns("table", "versions", fresh_app, "events", "--json")).stdout)
    assert [(v["version"], v["reason"], v["current"]) for v in versions] == [
        (1, "created", False), (2, "reset", True)]
    old = patterns("table", "show", fresh_app, "events", "--version", "1", "--format", "jsonl")
    assert [r["meta"]["depth"]["k"] for r in jsonl(ok(old).stdout)] == [0, 1, 2, 3, 4]

    # The next run writes into the new version; the consumer streams it from its start.
    ok(patterns("run", fresh_app, "--quiet"))
    assert len(jsonl(patterns("table", "show", fresh_app, "events", "--format", "jsonl").stdout)) == 5
    copied = patterns("table", "show", fresh_app, "copied", "--format", "jsonl", "--limit", "100")
    assert len(jsonl(copied.stdout)) == 10


def test_reset_drops_versions_past_keep_versions(fresh_app: Path) -> None:
    for _ in range(5):
        ok(patterns("table", "reset", fresh_app, "events", "--yes"))
    docs = json.loads(ok(patterns("table", "versions", fresh_app, "events", "--json")).stdout)
    assert [(d["version"], d["available"]) for d in docs] == [
        (1, False), (2, True), (3, True), (4, True), (5, True), (6, True)]  # keep_versions: 5
    failed(patterns("table", "show", fresh_app, "events", "--version", "1"), "no version 1",
           "versions kept: 2, 3, 4, 5, 6")
    assert "dropped" in ok(patterns("table", "versions", fresh_app, "events")).stdout
