"""How the DuckDB store keeps ``patterns_id`` on disk: table versions made now compress the
ids with ZSTD (cheap to insert, small), and a table written so reads, filters and streams
after the store is reopened exactly as before; a store file of an older storage format,
which cannot hold ZSTD text, still gets new tables and versions."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from patterns.store import open_store
from patterns.store.migrations import DATA
from patterns.store.model import Checkpoint, TableOp
from patterns.store.reads import next_pass
from tests.store.contract.conftest import append, meta_of, rows

N = 300_000


def append_numbers(store: object, table: str, start: int, n: int) -> None:
    """Rows ``{"n": start}`` .. ``{"n": start + n - 1}`` in one commit."""
    data = pa.table({"n": pa.array(range(start, start + n), pa.int64())})
    store.commit(Checkpoint(run_id="run-w", node_id="w",  # type: ignore[attr-defined]
                            ops={table: [TableOp("append", data)]}))


def id_compressions(path: Path, table: str) -> set[str]:
    """How the id column of ``table``'s current version is compressed, per segment."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        physical = con.execute(
            "SELECT physical FROM patterns_meta.tables WHERE name = ?", [table]).fetchall()[0][0]
        found = con.execute(
            "SELECT DISTINCT compression FROM pragma_storage_info(?) WHERE column_id = 0 "
            "AND segment_type = 'VARCHAR'",
            [f"{DATA}.{physical}"]).fetchall()
        return {str(c) for (c,) in found}
    finally:
        con.close()


def test_ids_are_stored_small_and_read_filter_and_stream_after_reopening(
        tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = open_store(path)
    append_numbers(store, "t", 0, N)
    append_numbers(store, "t", N, N)
    store.close()

    # Ids take a few bytes a row on disk: uncompressed, 600,000 of them alone are 15.6 MB
    # (the file also holds the numbers, the hidden key column and free blocks).
    assert path.stat().st_size < 10_000_000, path.stat().st_size
    assert id_compressions(path, "t") == {"ZSTD"}

    store = open_store(path)
    try:
        found = rows(store, "t", "patterns_id", "n")
        ids = [i for i, _ in found]
        assert [n for _, n in found] == list(range(2 * N))
        assert ids == sorted(ids) and len(set(ids)) == 2 * N and {len(i) for i in ids} == {26}
        # Filtering on the id in SQL (what a user's query does) finds exactly the rows.
        cut = ids[N + 12_345]
        with store.read() as view:
            after = view.query("SELECT count(*) AS c FROM t WHERE patterns_id > ?",
                               [cut]).read_all()
            one = view.query("SELECT n FROM t WHERE patterns_id = ?", [ids[77]]).read_all()
        assert after.column("c").to_pylist() == [N - 12_346]
        assert one.column("n").to_pylist() == [77]
        # A stream from the middle of the first commit delivers exactly the rest, in order.
        meta = meta_of(store, "t")
        position = next_pass(meta, None, None).delivered(ids[N - 5])
        with store.read() as view:
            rest = view.stream(meta, next_pass(meta, position, None)).read_all()
        assert rest.column("n").to_pylist() == list(range(N - 4, 2 * N))
    finally:
        store.close()


def test_a_store_file_of_an_older_format_still_takes_new_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect()
    con.execute(f"ATTACH '{path}' AS old (STORAGE_VERSION 'v1.0.0')")
    con.close()

    store = open_store(path)
    try:
        append(store, "t", [{"n": 1}, {"n": 2}])
        append(store, "t", [{"n": 3}])
    finally:
        store.close()
    assert "ZSTD" not in id_compressions(path, "t")
    store = open_store(path)
    try:
        found = rows(store, "t", "patterns_id", "n")
        assert [n for _, n in found] == [1, 2, 3]
        assert [i for i, _ in found] == sorted(i for i, _ in found)
    finally:
        store.close()
