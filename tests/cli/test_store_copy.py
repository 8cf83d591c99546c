"""`patterns store copy`: an app's whole store moved DuckDB → PostgreSQL → DuckDB loses
nothing (every table version, state, stream positions, runs, logs, webhook tokens, the
queue), and the app goes on on the copy with its stream exactly where it was; a non-empty
target is refused without --force, a served store is refused, a failed copy writes nothing."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from patterns.store import open_store
from tests.cli.conftest import failed, ok, patterns

GRAPH = """
title: Moving
slug: moving
functions:
  - node_file: gen.py
    id: gen00001
  - node_file: half.py
    id: half0001
  - webhook: inbox
    id: hook0001
stores:
  - table: events
  - table: snap
  - table: taken
  - table: inbox
"""

#: Each run: 20 more events, a new version of ``snap``, and a run counter in its state.
GEN = """
from patterns import State, Table
state = State()
run = state.get_value("runs", 0) + 1
state.set_value("runs", run)
base = (run - 1) * 20
Table("events", "w").append([{"n": base + i, "tag": {"run": run}} for i in range(1, 21)])
Table("snap", "w").replace([{"run": run, "blob": b"\\x00\\x01", "ok": True}])
print("generated run", run)
"""

#: Each run takes the next 5 events of the stream, and no more (a stream half-consumed).
HALF = """
from patterns import Table
events = Table("events")
taken = Table("taken", "w")
for i, record in enumerate(events.as_stream().consume_records()):
    taken.append({"n": record["n"]})
    if i == 4:
        break
print("took five")
"""


def _app(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "graph.yml").write_text(textwrap.dedent(GRAPH))
    (root / "gen.py").write_text(textwrap.dedent(GEN))
    (root / "half.py").write_text(textwrap.dedent(HALF))
    return root


def _dump(url: str | Path) -> dict[str, Any]:
    """Everything a store holds, as comparable values (metadata rows sorted; each table
    version's rows, every column, sorted by id)."""
    store = open_store(url, read_only=True)
    out: dict[str, Any] = {}
    try:
        with store.archive() as archive:
            from patterns.store.archive import METADATA

            for table in METADATA:
                names, rows = archive.meta_rows(table)
                out[table] = sorted(tuple(sorted(zip(names, map(repr, r), strict=True)))
                                    for r in rows)
            for meta in archive.view.tables.all():
                for version in archive.view.tables.versions(meta.name):
                    rows = archive.version_rows(version.physical).read_all().to_pylist()
                    out[f"{meta.name}@{version.version}"] = sorted(
                        rows, key=lambda r: str(r.get("patterns_id") or r))
    finally:
        store.close()
    return out


def test_a_round_trip_through_postgresql_loses_nothing_and_the_app_goes_on(
        tmp_path: Path, postgres_url: str) -> None:
    app = _app(tmp_path / "moving")
    ok(patterns("run", app))
    ok(patterns("run", app))
    hooks = ok(patterns("list", "webhooks", app)).stdout  # (makes the token)
    original = app / ".patterns" / "store.duckdb"
    before = _dump(original)
    assert len([k for k in before if k.startswith("snap@")]) == 3  # (made, replaced twice)
    assert len(before["runs"]) == 4 and before["run_logs"] and before["webhooks"]

    there = ok(patterns("store", "copy", original, postgres_url)).stdout
    assert "table events: 1 version, 40 rows" in there and "runs: 4 rows" in there
    back = tmp_path / "back.duckdb"
    ok(patterns("store", "copy", postgres_url, f"duckdb://{back}"))
    assert _dump(back) == before  # every row of every table and version, exactly

    # On PostgreSQL the app reads the same: tables, runs, state.
    shown = ok(patterns("table", "show", app, "events", "--store", postgres_url)).stdout
    assert "of 40" in shown
    assert "half" in ok(patterns("runs", app, "--store", postgres_url)).stdout

    # The app goes on on the copy: its stream picks up at record 11, its state at run 3.
    original.unlink()
    back.rename(original)
    ok(patterns("run", app))
    after = open_store(original, read_only=True)
    try:
        with after.read() as view:
            taken = view.scan(view.tables.get("taken")).read_all()["n"].to_pylist()
            assert view.memory.state("gen00001") == {"runs": 3}
            events = view.tables.get("events")
            assert events is not None
            ids = view.scan(events).read_all().to_pylist()
    finally:
        after.close()
    assert sorted(taken) == list(range(1, 16))  # 1-5, 6-10 before; 11-15 on the copy
    new = [r["patterns_id"] for r in ids if r["n"] > 40]
    old = [r["patterns_id"] for r in ids if r["n"] <= 40]
    assert len(new) == 20 and min(new) > max(old)  # ids go on after the copied ones
    assert hooks.split() == ok(patterns("list", "webhooks", app)).stdout.split()


def test_a_non_empty_target_is_refused_unless_forced(tmp_path: Path,
                                                     postgres_url: str) -> None:
    app = _app(tmp_path / "moving")
    ok(patterns("run", app))
    store = app / ".patterns" / "store.duckdb"
    ok(patterns("store", "copy", store, postgres_url))
    ok(patterns("run", app))  # the source moves on: one more run
    line = failed(patterns("store", "copy", store, postgres_url), "is not empty", "--force")
    assert "Traceback" not in line
    forced = ok(patterns("store", "copy", store, postgres_url, "--force")).stdout
    assert "clearing the target" in forced and "runs: 4 rows" in forced
    pg = open_store(postgres_url, read_only=True)
    try:
        with pg.read() as view:
            assert len(view.runs.recent()) == 4
            assert [v.version for v in view.tables.versions("snap")] == [1, 2, 3]
    finally:
        pg.close()


def test_a_served_store_and_a_missing_one_are_refused(tmp_path: Path,
                                                      postgres_url: str) -> None:
    app = _app(tmp_path / "moving")
    ok(patterns("run", app))
    ok(patterns("store", "copy", app / ".patterns" / "store.duckdb", postgres_url))
    from patterns.engine.claims import Claims

    pg = open_store(postgres_url)
    claims = Claims(pg, seconds=60)  # an engine serving the store
    try:
        failed(patterns("store", "copy", postgres_url, tmp_path / "out.duckdb"),
               "is being served by 1 engine", "stop `patterns serve`")
    finally:
        claims.close()
        pg.close()
    ok(patterns("store", "copy", postgres_url, tmp_path / "out.duckdb"))
    failed(patterns("store", "copy", tmp_path / "nowhere.duckdb", postgres_url),
           "no store at")


NUL = """
from patterns import Table
Table("events", "w").append([{"n": 1, "text": "fine"}, {"n": 2, "text": "a\\x00b"}])
"""


def test_a_copy_that_fails_leaves_the_target_as_it_was(tmp_path: Path,
                                                       postgres_url: str) -> None:
    good = _app(tmp_path / "moving")
    ok(patterns("run", good))
    ok(patterns("store", "copy", good / ".patterns" / "store.duckdb", postgres_url))
    before = _dump(postgres_url)
    # A text with a NUL character: DuckDB keeps it, PostgreSQL cannot.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "graph.yml").write_text("title: Bad\nfunctions:\n  - node_file: nul.py\n"
                                   "stores:\n  - table: events\n")
    (bad / "nul.py").write_text(textwrap.dedent(NUL))
    ok(patterns("run", bad))
    failed(patterns("store", "copy", bad / ".patterns" / "store.duckdb", postgres_url,
                    "--force"), "table 'events'", "nothing was written")
    assert _dump(postgres_url) == before  # cleared, half copied, then all rolled back
