"""``patterns table delete`` and ``patterns table alter``: repairing data as new versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli.conftest import failed, jsonl, ok, patterns


def rows(app: Path, table: str, *version: str) -> list[dict[str, Any]]:
    args = ("--version", *version) if version else ()
    return jsonl(ok(patterns("table", "show", app, table, "--format", "jsonl", *args)).stdout)


def versions(app: Path, table: str) -> list[tuple[int, str, bool]]:
    docs = json.loads(ok(patterns("table", "versions", app, table, "--json")).stdout)
    return [(d["version"], d["reason"], d["current"]) for d in docs]


def test_delete_by_predicate_is_a_new_version_and_the_old_one_stays(fresh_app: Path) -> None:
    before = rows(fresh_app, "events")
    out = ok(patterns("table", "delete", fresh_app, "events", "--where", "n >= 3 OR NOT ok",
                      "--yes")).stdout
    assert "deleted 3 row(s)" in out and "version 2" in out
    after = rows(fresh_app, "events")
    assert [r["n"] for r in after] == [0, 2]
    # The rows keep their ids and values.
    assert after == [r for r in before if r["n"] in (0, 2)]
    assert versions(fresh_app, "events") == [(1, "created", False), (2, "delete", True)]
    assert rows(fresh_app, "events", "1") == before


def test_delete_asks_first_and_no_keeps_everything(fresh_app: Path) -> None:
    result = patterns("table", "delete", fresh_app, "events", "--where", "n = 1", input="n\n")
    assert result.returncode == 1 and "Delete 1 of 5 row(s)" in result.stdout
    assert len(rows(fresh_app, "events")) == 5
    assert "nothing changed" in ok(patterns("table", "delete", fresh_app, "events",
                                            "--where", "n > 100", "--yes")).stdout


def test_bad_predicates_are_clear_errors_and_change_nothing(fresh_app: Path) -> None:
    failed(patterns("table", "delete", fresh_app, "events", "--where", "amount < 0", "--yes"),
           "--where 'amount < 0' does not work on table 'events'", "its columns: n, name")
    failed(patterns("table", "delete", fresh_app, "events", "--where", "n <", "--yes"),
           "is not a SQL condition")
    failed(patterns("table", "delete", fresh_app, "events", "--where",
                    "n = 1; DROP TABLE events", "--yes"), "one SQL condition")
    assert len(rows(fresh_app, "events")) == 5
    assert versions(fresh_app, "events") == [(1, "created", True)]


def test_alter_casts_every_value_as_a_new_version(fresh_app: Path) -> None:
    out = ok(patterns("table", "alter", fresh_app, "events", "n", "float", "--yes")).stdout
    assert "now holds float values (version 2)" in out
    assert [r["n"] for r in rows(fresh_app, "events")] == [0.0, 1.0, 2.0, 3.0, 4.0]
    ok(patterns("table", "alter", fresh_app, "events", "name", "text", "--yes"))
    ok(patterns("table", "alter", fresh_app, "events", "n", "text", "--yes"))
    assert [r["n"] for r in rows(fresh_app, "events")][:2] == ["0.0", "1.0"]
    assert [v[1] for v in versions(fresh_app, "events")] == ["created", "alter", "alter",
                                                             "alter"]
    assert [r["n"] for r in rows(fresh_app, "events", "1")] == [0, 1, 2, 3, 4]


def test_alter_errors_change_nothing(fresh_app: Path) -> None:
    failed(patterns("table", "alter", fresh_app, "events", "name", "int", "--yes"),
           "column 'name' holds 'event 0', which cannot be cast to int", "nothing changed")
    failed(patterns("table", "alter", fresh_app, "events", "amount", "int", "--yes"),
           "no column 'amount'", "its columns: n, name")
    failed(patterns("table", "alter", fresh_app, "events", "n", "money", "--yes"),
           "unknown type 'money'")
    assert versions(fresh_app, "events") == [(1, "created", True)]
    assert [r["n"] for r in rows(fresh_app, "events")] == [0, 1, 2, 3, 4]
