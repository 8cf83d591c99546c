"""The DuckDB store's hidden ``_patterns_id_ms`` column: every row has its id's block key
(millisecond, block number), whatever wrote it; a store made before the column gets the ids'
milliseconds when opened (migration 3), and a stream stopped mid-way on such a store goes on
with no record lost or delivered twice, also over ids made before blocks had keys of their
own (migration 4). A pass after a huge commit does not read that commit's row groups again."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import duckdb
import sqlglot

from patterns.positions import StreamPosition
from patterns.sdk._convert import records_to_arrow
from patterns.store import open_store
from patterns.store.duckdb import DuckDBStore
from patterns.store.ids import encode, id_key, id_ms
from patterns.store.interface import Store
from patterns.store.migrations import DATA, META
from patterns.store.model import ID_MS, Checkpoint, SqlWrite, TableOp, TableOptions
from patterns.store.reads import EVERY_KEY_SHARED, next_pass, pass_is_empty, stream_sql
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
    column in any table version, no ``id_keys``, migrations 3 and 4 not recorded."""
    con = duckdb.connect(str(path))
    try:
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE "
                                    "schema_name = ?", [DATA]).fetchall():
            con.execute(f'ALTER TABLE {DATA}."{table}" DROP COLUMN "{ID_MS}"')
        con.execute(f"DELETE FROM {META}.migrations WHERE version >= 3")
        con.execute(f"DROP TABLE {META}.id_keys")
        con.execute(f"DROP TABLE IF EXISTS {META}.id_order")
        left = con.execute("SELECT count(*) FROM duckdb_columns() WHERE column_name = ?",
                           [ID_MS]).fetchall()
        assert left == [(0,)]
    finally:
        con.close()


class OldSequence:
    """What :class:`~patterns.store.ids.UlidSequence` made before blocks had keys: in one
    millisecond (here a stopped clock) every block shares the id's first 16 characters
    and the counter goes on across commits."""

    def __init__(self, ms: int) -> None:
        self.ms = self.key = ms  # (what the writer stored in the hidden column then)
        self._prefix = encode(ms, 10) + encode(int.from_bytes(os.urandom(4), "big") >> 2, 6)
        self._next = 0

    def block(self, n: int) -> Any:
        import pyarrow as pa

        ids = [self._prefix + encode(self._next + k, 10) for k in range(n)]
        self._next += n
        return pa.array(ids, pa.string())

    def last(self) -> str:
        return self._prefix + encode(self._next - 1, 10)


def test_every_row_carries_its_ids_key_whatever_wrote_it(tmp_path: Path) -> None:
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
        assert pairs and all(key == id_key(i) for i, key in pairs)
    # Each commit's ids have a key of their own, even within one millisecond.
    keys = [key for _, key in versions["t__v3"]]
    assert len(set(keys)) == 2


def test_an_updated_row_comes_again_in_the_next_pass(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.duckdb")
    try:
        append(store, "t", [{"n": 1}, {"n": 2}])
        got, pos = consume(store, "t", None)
        assert got == [1, 2]
        statement = sqlglot.parse_one("UPDATE main.t SET n = 5 WHERE n = 1", read="duckdb")
        op(store, "t", TableOp("sql", sql=SqlWrite("update", statement)))
        got, pos = consume(store, "t", pos)
        assert got == [5]
    finally:
        store.close()


def test_the_upgrade_keeps_the_ids_compressed(tmp_path: Path) -> None:
    """Migration 3 copies every version into a table with the hidden column; the copy
    stores its ids as a new version does (ZSTD), not in DuckDB's default for text, which
    is larger and slower to insert."""
    from tests.store.test_id_storage import append_numbers, id_compressions

    path = tmp_path / "store.duckdb"
    store = open_store(path)
    try:
        append_numbers(store, "t", 0, 50_000)
    finally:
        store.close()
    to_old_layout(path)
    assert id_compressions(path, "t") == {"ZSTD"}
    store = open_store(path)
    store.close()
    assert id_compressions(path, "t") == {"ZSTD"}


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
        ids = [i for i, _ in pairs]
        old = len(ids_before[table])
        assert ids[:old] == ids_before[table]
        # (rows from before the upgrade: their millisecond; the row appended after: its key)
        assert [key for _, key in pairs] == [id_ms(i) for i in ids[:old]] + \
            [id_key(i) for i in ids[old:]]


def test_a_field_named_like_the_hidden_column_does_not_reach_it(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = open_store(path)
    try:
        append(store, "t", [{"n": 1, ID_MS: 5}])
        assert [sorted(r) for r in rows_of(store, "t")] == [["n", "patterns_id"]]
    finally:
        store.close()
    (pairs,) = ms_columns(path).values()
    assert [key for _, key in pairs] == [id_key(pairs[0][0])]


def rows_of(store: Store, table: str) -> list[dict[str, Any]]:
    with store.read() as view:
        meta = view.tables.get(table)
        assert meta is not None
        found: list[dict[str, Any]] = view.scan(meta).read_all().to_pylist()
    return found


def test_commits_whose_ids_share_a_key_are_each_delivered_once_across_the_upgrade(
        tmp_path: Path) -> None:
    """Ids made before blocks had keys share their first 13 characters across commits of one
    millisecond: a stream position among them keeps an inclusive bound until it has passed
    the last of them, then bounds passes strictly."""
    path = tmp_path / "store.duckdb"
    store = open_store(path)
    try:
        assert isinstance(store, DuckDBStore)
        store.ids = OldSequence(int(time.time() * 1000))  # type: ignore[assignment]
        append(store, "t", [{"n": k} for k in range(3)])
        got, first = consume(store, "t", None)
        assert got == [0, 1, 2] and first.done
        append(store, "t", [{"n": k} for k in range(3, 6)])  # (the same key as the first)
        store.commit(Checkpoint(run_id="r", node_id="reader", positions={"t": first}))
    finally:
        store.close()
    to_old_layout(path)

    upgraded = open_store(path)
    try:
        assert isinstance(upgraded, DuckDBStore)
        meta = meta_of(upgraded, "t")
        assert upgraded.shared_keys == meta.last_id  # (the last id made before the upgrade)
        with upgraded.read() as view:
            stored = view.memory.positions("reader")["t"]
        pos = next_pass(meta, stored, None)
        # A strict bound on the old ids' shared key would lose the second commit:
        lost, params = stream_sql(meta, pos, shared_keys=None)
        assert upgraded.cursor().execute(lost, params).fetchall() == []
        got, pos = consume(upgraded, "t", stored)
        assert got == [3, 4, 5]
        append(upgraded, "t", [{"n": 6}])
        got, pos = consume(upgraded, "t", pos)  # (from the last old id: inclusive)
        assert got == [6]
        append(upgraded, "t", [{"n": 7}, {"n": 8}])
        got, pos = consume(upgraded, "t", pos)  # (from a new id: strict)
        assert got == [7, 8]
        assert consume(upgraded, "t", pos)[0] == []
    finally:
        upgraded.close()
    # A new store has no ids from before: every finished pass is bounded strictly.
    fresh = open_store(tmp_path / "fresh.duckdb")
    try:
        assert isinstance(fresh, DuckDBStore) and fresh.shared_keys is None
    finally:
        fresh.close()


def scanned(store: DuckDBStore, sql: str, params: list[Any]) -> int:
    """How many rows of the table DuckDB read to answer ``sql`` (its query profile)."""
    cur = store.cursor()
    try:
        cur.execute("SET profiling_mode = 'detailed'")
        (row,) = cur.execute(f"EXPLAIN (ANALYZE, FORMAT json) {sql}", params).fetchall()
    finally:
        cur.close()

    def scans(node: dict[str, Any]) -> int:
        own = int(node.get("rows_scanned", 0)) if node.get("type") == "TABLE_SCAN" else 0
        return own + sum(scans(child) for child in node.get("children", []))

    return sum(scans(node) for node in json.loads(row[1])["operator"])


def test_a_pass_after_a_huge_commit_does_not_read_it_again(tmp_path: Path) -> None:
    import pyarrow as pa

    huge = 500_000
    store = open_store(tmp_path / "store.duckdb")
    try:
        assert isinstance(store, DuckDBStore)
        op(store, "t", TableOp("append", pa.table({"n": pa.array(range(huge), pa.int64())})))
        meta = meta_of(store, "t")
        pos = next_pass(meta, None, None).finished()
        append(store, "t", [{"n": huge + k} for k in range(10)])
        meta = meta_of(store, "t")
        now = next_pass(meta, pos, None)
        sql, params = stream_sql(meta, now, shared_keys=store.shared_keys)
        assert [r[0] for r in store.cursor().execute(sql, params).fetchall()] == \
            list(range(huge, huge + 10))
        read = scanned(store, sql, params)
        # With the inclusive bound of ids that share keys, the huge commit is read again:
        again = scanned(store, *stream_sql(meta, now, shared_keys=EVERY_KEY_SHARED))
    finally:
        store.close()
    assert again >= huge
    assert read < huge // 2  # (at most the row group the new rows share with the last)


def test_a_copied_store_bounds_passes_inclusively_up_to_the_ids_it_took_in(
        tmp_path: Path) -> None:
    """``patterns store copy`` cannot tell ids that share keys (an old store's) from others:
    the copy moves ``shared_up_to`` past every id it took in, and a stream's stored position
    goes on in the copy with nothing lost."""
    from patterns.store.copy import copy_store

    source = open_store(tmp_path / "source.duckdb")
    try:
        assert isinstance(source, DuckDBStore)
        source.ids = OldSequence(int(time.time() * 1000))  # type: ignore[assignment]
        append(source, "t", [{"n": 0}])
        got, first = consume(source, "t", None)
        assert got == [0]
        append(source, "t", [{"n": 1}, {"n": 2}])  # (the same key as the first)
        source.commit(Checkpoint(run_id="r", node_id="reader", positions={"t": first}))
        copy = open_store(tmp_path / "copy.duckdb")
        try:
            assert isinstance(copy, DuckDBStore) and copy.shared_keys is None
            copy_store(source, copy)
            assert copy.shared_keys == meta_of(copy, "t").last_id
            with copy.read() as view:
                stored = view.memory.positions("reader")["t"]
            assert stored == first
            assert consume(copy, "t", stored)[0] == [1, 2]
        finally:
            copy.close()
    finally:
        source.close()
