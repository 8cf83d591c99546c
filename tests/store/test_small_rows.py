"""A DuckDB commit inserts a few appended rows from statement parameters instead of a
registered Arrow table (patterns/store/small_rows.py): what lands must be what the Arrow
path stores, value for value and type for type, in order, with the same errors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from patterns.errors import NodeError
from patterns.sdk._convert import records_to_arrow
from patterns.store.duckdb import DuckDBStore
from patterns.store.small_rows import SMALL_ROWS, as_values
from patterns.store.tables import q
from tests.store.contract.conftest import append, meta_of, rows

RECORDS: list[dict[str, Any]] = [
    {"i": 2**63 - 1, "f": 1.5, "b": True, "t": "plain"},
    {"i": -(2**63), "f": float("inf"), "b": False, "t": ""},
    {"i": 0, "f": -0.0, "b": None, "t": "ünïcødé ✓ 𝄞"},
    {"i": None, "f": float("nan"), "b": True, "t": "it's \"quoted\"; DROP TABLE x"},
    {"i": 7, "f": None, "b": False, "t": None},
    {"i": 1, "f": 1e308, "b": True, "t": "line\nbreak\ttab"},
]
FIELDS = ("i", "f", "b", "t")
#: Values of one field that are lists in one record and objects in another: JSON text.
JSON_PAIR: list[dict[str, Any]] = [{"j": {"a": [1, 2], "b": None}}, {"j": [1, "x", {}]}]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b and type(a) is type(b))


def _columns(store: DuckDBStore, table: str) -> list[tuple[str, str]]:
    meta = meta_of(store, table)
    with store.cursor() as cur:
        return [(str(r[0]), str(r[1])) for r in
                cur.execute(f"DESCRIBE patterns_data.{q(meta.physical)}").fetchall()]


def test_few_rows_store_what_the_arrow_path_stores(tmp_path: Path) -> None:
    """Records appended one per commit (parameters) and the same records in one append
    big enough for the Arrow path read back the same, in the same column types."""
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        many = RECORDS * (SMALL_ROWS // len(RECORDS) + 1)
        assert len(many) > SMALL_ROWS
        assert as_values(records_to_arrow(many, "big"), q) is None  # (the Arrow path)
        append(store, "big", many)
        for record in many:
            assert as_values(records_to_arrow([record], "few"), q) is not None
            append(store, "few", [record])
        assert _columns(store, "few") == _columns(store, "big")
        few, big = rows(store, "few", *FIELDS), rows(store, "big", *FIELDS)
        assert len(few) == len(big) == len(many)
        for got, want in zip(few, big, strict=True):
            assert all(_same(g, w) for g, w in zip(got, want, strict=True)), (got, want)
        # JSON values that arrive as JSON text
        pairs = JSON_PAIR * (SMALL_ROWS // 2 + 1)
        append(store, "json_big", pairs)
        for i in range(0, len(pairs), 2):
            assert as_values(records_to_arrow(pairs[i:i + 2], "json_few"), q) is not None
            append(store, "json_few", pairs[i:i + 2])
        assert _columns(store, "json_few") == _columns(store, "json_big")
        assert rows(store, "json_few", "j") == rows(store, "json_big", "j")
        # ids keep commit order, one per row
        ids = rows(store, "few", "patterns_id")
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
    finally:
        store.close()


def test_several_rows_of_one_append_keep_their_order(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        records = [{"n": n, "name": f"r{n}"} for n in range(SMALL_ROWS)]
        assert as_values(records_to_arrow(records, "t"), q) is not None
        append(store, "t", records[:3])
        append(store, "t", records[3:])
        assert rows(store, "t", "n", "name") == [(r["n"], r["name"]) for r in records]
        ids = rows(store, "t", "patterns_id")
        assert ids == sorted(ids)
        assert store.count(meta_of(store, "t")) == SMALL_ROWS
    finally:
        store.close()


def test_a_value_that_does_not_fit_is_refused_and_nothing_written(tmp_path: Path) -> None:
    """Text that does not parse as the column's integers: the error names the table, the
    record and the field, and the table is as it was."""
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        append(store, "t", [{"n": 1}])
        assert as_values(records_to_arrow([{"n": "x"}], "t"), q) is not None
        with pytest.raises(NodeError, match="table 't': record 1, field 'n': 'x' does not fit"):
            append(store, "t", [{"n": 2}, {"n": "x"}])
        assert rows(store, "t", "n") == [1]
        append(store, "t", [{"n": "3"}])  # (text that parses: stored as the integer)
        assert rows(store, "t", "n") == [1, 3]
    finally:
        store.close()


def test_types_a_parameter_would_change_take_the_arrow_path(tmp_path: Path) -> None:
    """Timestamps, bytes and nested values are not sent as parameters; they still land."""
    import datetime as dt

    record = {"at": dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC), "raw": b"\x00\xff"}
    assert as_values(records_to_arrow([record], "t"), q) is None
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        append(store, "t", [record])
        assert rows(store, "t", "at", "raw") == [(record["at"], record["raw"])]
    finally:
        store.close()
