"""The DuckDB store's hidden ``_patterns_id_ms`` column: every row has its id's millisecond,
whatever wrote it; a store made before the column gets it when opened (migration 3), and a
stream stopped mid-way on such a store goes on with no record lost or delivered twice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import sqlglot

from patterns.positions import StreamPosition
from patterns.sdk._convert import records_to_arrow
from patterns.store import open_store
from patterns.store.ids import id_ms
from patterns.store.interface import Store
from patterns.store.migrations import DATA, META
from patterns.store.model import ID_MS, Checkpoint, SqlWrite, TableOp, TableOptions
from patterns.store.reads import next_pass, pass_is_empty
from tests.store.contract.conftest import append, meta_of, op


def consume(store: Store, table: str, position: StreamPosition | None,
            limit: int | None = None) -> tuple[list[int], StreamPosition]:
    """One pass of ``table`` from ``position`` (at most ``limit`` rows): the ``n`` values
    delivered and where the stream got to."""
    meta = meta_of(store, table)
    pos = next_pass(meta, position, None)
    if pass_is_empty(pos):
        return [], pos.finished()
    with store.read() as view:
        found: list[dict[str, Any]] = view.stream(meta, pos).read_all().to_pylist()
    if limit is not None and len(found) > limit:
        found = found[:limit]
        return [r["n"] for r in found], pos.delivered(found[-1][meta.physical_id])
    return [r["n"] for r in found], pos.finished()


def ms_columns(path: Path) -> dict[str, list[tuple[str, int]]]:
    """Each stored table version's (id, id_ms) pairs, read straight from the file."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE "
                                    "schema_name = ?", [DATA]).fetchall():
            first = con.execute(f'SELECT * FROM {DATA}."{table}" LIMIT 0').description[0][0]
            out[table] = [(str(i), int(m)) for i, m in con.execute(
                f'SELECT "{first}", "{ID_MS}" FROM {DATA}."{table}"').fetchall()]
        return out
    finally:
        con.close()


def to_old_layout(path: Path) -> None:
    """Make the store file what versions before migration 3 wrote: no ``_patterns_id_ms``
    column in any table version, migration 3 not recorded."""
    con = duckdb.connect(str(path))
    try:
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE "
                                    "schema_name = ?", [DATA]).fetchall():
            con.execute(f'ALTER TABLE {DATA}."{table}" DROP COLUMN "{ID_MS}"')
        con.execute(f"DELETE FROM {META}.migrations WHERE version >= 3")
        left = con.execute("SELECT count(*) FROM duckdb_columns() WHERE column_name = ?",
                           [ID_MS]).fetchall()
        assert left == [(0,)]
    finally:
        con.close()


def test_every_row_carries_its_ids_millisecond_whatever_wrote_it(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = open_store(path)
    try:
        append(store, "t", [{"n": 1}, {"n": 2}])
        op(store, "t", TableOp("upsert", records_to_arrow([{"n": 2}, {"n": 3}], "t"),
                               unique_on=("n",)))
        statement = sqlglot.parse_one("UPDATE main.t SET n = n + 10 WHERE n = 1",
                                      read="duckdb")
        op(store, "t", TableOp("sql", sql=SqlWrite("update", statement)))
        op(store, "t", TableOp("alter", alter=("n", "float")))
        op(store, "t", TableOp("delete", where="n = 3"))
        op(store, "h", TableOp("init", options=TableOptions(add_monotonic_id=None)))
        append(store, "h", [{"n": 1}])
    finally:
        store.close()
    versions = ms_columns(path)
    assert len(versions) == 4  # t: created, altered, deleted from; h
    for pairs in versions.values():
        assert pairs and all(ms == id_ms(i) for i, ms in pairs)


def test_an_updated_row_comes_again_in_the_next_pass(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.duckdb")
    try:
        append(store, "t", [{"n": 1}, {"n": 2}])
        got, pos = consume(store, "t", None)
        assert got == [1, 2]
        time.sleep(0.01)  # (the update's ids are of a later millisecond than the rows')
        statement = sqlglot.parse_one("UPDATE main.t SET n = 5 WHERE n = 1", read="duckdb")
        op(store, "t", TableOp("sql", sql=SqlWrite("update", statement)))
        got, pos = consume(store, "t", pos)
        assert got == [5]
    finally:
        store.close()


def test_a_stream_stopped_midway_goes_on_exactly_once_after_the_upgrade(
        tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = open_store(path)
    try:
        append(store, "t", [{"n": k} for k in range(3)])
        op(store, "t", TableOp("replace", records_to_arrow([{"n": k} for k in range(4)], "t")))
        append(store, "t", [{"n": k} for k in range(4, 8)])
        op(store, "h", TableOp("init", options=TableOptions(add_monotonic_id=None)))
        append(store, "h", [{"n": k} for k in range(5)])
        delivered: dict[str, list[int]] = {}
        positions: dict[str, StreamPosition] = {}
        for table, limit in (("t", 5), ("h", 2)):
            delivered[table], positions[table] = consume(store, table, None, limit=limit)
            assert not positions[table].done
        store.commit(Checkpoint(run_id="r", node_id="reader", positions=dict(positions)))
    finally:
        store.close()
    ids_before = {t: [i for i, _ in pairs] for t, pairs in ms_columns(path).items()}
    to_old_layout(path)

    upgraded = open_store(path)
    try:
        with upgraded.read() as view:
            stored = view.memory.positions("reader")
        assert stored == positions  # (positions hold ids, which the upgrade leaves as they are)
        for table in ("t", "h"):
            got, positions[table] = consume(upgraded, table, stored[table])
            assert positions[table].done
            delivered[table] += got
        assert delivered == {"t": list(range(8)), "h": list(range(5))}
        append(upgraded, "t", [{"n": 8}])
        assert consume(upgraded, "t", positions["t"])[0] == [8]
        assert consume(upgraded, "h", positions["h"])[0] == []
    finally:
        upgraded.close()
    after = ms_columns(path)
    assert sorted(after) == ["h__v1", "t__v1", "t__v2"]  # (old versions too)
    for table, pairs in after.items():
        assert all(ms == id_ms(i) for i, ms in pairs)
        ids = [i for i, _ in pairs]
        assert ids[:len(ids_before[table])] == ids_before[table]


def test_a_field_named_like_the_hidden_column_does_not_reach_it(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = open_store(path)
    try:
        append(store, "t", [{"n": 1, ID_MS: 5}])
        assert [sorted(r) for r in rows_of(store, "t")] == [["n", "patterns_id"]]
    finally:
        store.close()
    (pairs,) = ms_columns(path).values()
    assert [ms for _, ms in pairs] == [id_ms(pairs[0][0])]


def rows_of(store: Store, table: str) -> list[dict[str, Any]]:
    with store.read() as view:
        meta = view.tables.get(table)
        assert meta is not None
        found: list[dict[str, Any]] = view.scan(meta).read_all().to_pylist()
    return found
