"""Appends, upserts, schema evolution and versions on a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pyarrow as pa
import pytest

from patterns.errors import NodeError
from patterns.store.duckdb import DuckDBStore
from patterns.store.model import Checkpoint, StoreRules, TableOp, TableOptions
from patterns.store.postgres import PostgresStore
from tests.store.postgres.conftest import append, commit, rows

UID = uuid.UUID("12345678-1234-5678-1234-567812345678")
EVERY_KIND = pa.table({
    "flag": [True, False, None],
    "count": [1, -(2**62), None],
    "ratio": [1.5, float("inf"), None],
    "name": ['quote " comma , newline \n end', "", None],
    "day": [dt.date(2024, 2, 29), dt.date(1970, 1, 1), None],
    "at": [dt.datetime(2024, 1, 1, 12, 30, 1, 123456), dt.datetime(2000, 1, 1), None],
    "at_tz": pa.array([dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC),
                       dt.datetime(2024, 6, 1, 23, 59, 59, tzinfo=dt.UTC), None]),
    "clock": [dt.time(23, 59, 59, 999999), dt.time(0, 0), None],
    "doc": [{"a": 1, "b": "x"}, {"a": 2, "b": None}, None],
    "blob": [b"\x00\x01\xff", b"", None],
    "amount": pa.array([decimal.Decimal("12.50"), decimal.Decimal("-0.25"), None],
                       pa.decimal128(10, 2)),
    "key": [str(UID), str(uuid.UUID(int=0)), None],
})


def test_every_kind_round_trips_with_the_types_duckdb_gives(pg_store: PostgresStore,
                                                            tmp_path) -> None:
    result = commit(pg_store, "things", append(EVERY_KIND))
    assert result.rows_added == {"things": 3}
    with pg_store.read() as view:
        meta = view.tables.get("things")
        assert meta is not None
        got = view.scan(meta).read_all()
    duck = DuckDBStore(tmp_path / "store.duckdb")
    cp = Checkpoint("r", "n")
    cp.add("things", TableOp("append", EVERY_KIND))
    duck.commit(cp)
    duck_meta = duck.table("things")
    assert duck_meta is not None
    expected = duck.arrow("SELECT * FROM main.things ORDER BY patterns_id")
    duck.close()
    assert meta.kinds() == duck_meta.kinds()
    assert got.schema == expected.schema
    mine, theirs = got.to_pylist(), expected.to_pylist()
    for a, b in zip(mine, theirs, strict=True):
        for name in EVERY_KIND.column_names:
            if name == "doc":  # (JSON text: PostgreSQL's jsonb spaces it out)
                import json

                assert (json.loads(a[name]) if a[name] else None) == \
                    (json.loads(b[name]) if b[name] else None)
            else:
                assert a[name] == b[name], name
    assert mine[1]["name"] == "" and mine[2]["name"] is None  # (empty text is not null)
    assert [r["patterns_id"] for r in mine] == sorted(r["patterns_id"] for r in mine)


def test_columns_widen_and_new_fields_add_columns(pg_store: PostgresStore) -> None:
    commit(pg_store, "t", append({"n": [1, 2], "day": [dt.date(2024, 1, 1)] * 2}))
    commit(pg_store, "t", append({"n": [2.5], "day": [dt.datetime(2024, 1, 2, 6)],
                                  "extra": ["x"]}))
    meta = pg_store.table("t")
    assert meta is not None
    assert meta.kinds() == {"n": "float", "day": "timestamp", "extra": "text"}
    got = rows(pg_store, "t")
    assert [r["n"] for r in got] == [1.0, 2.0, 2.5]
    assert got[2]["day"] == dt.datetime(2024, 1, 2, 6) and got[2]["extra"] == "x"
    with pg_store.read() as view:  # the view in public follows the new columns
        assert view.query("SELECT sum(n) AS s FROM t").read_all().to_pylist() == [{"s": 5.5}]


def test_a_value_that_does_not_fit_is_refused_and_nothing_is_written(
        pg_store: PostgresStore) -> None:
    commit(pg_store, "t", append({"n": [1]}))
    with pytest.raises(NodeError, match=r"record 1, field 'n'.*'abc'"):
        commit(pg_store, "t", append({"n": ["2", "abc"]}), TableOp("append", pa.table(
            {"other": [1]})))
    assert [r["n"] for r in rows(pg_store, "t")] == [1]
    meta = pg_store.table("t")
    assert meta is not None and meta.kinds() == {"n": "int"}


def test_variant_contract_keeps_values_aside(pg_store: PostgresStore) -> None:
    rules = {"t": StoreRules(contract="variant")}
    commit(pg_store, "t", append({"n": [1]}), rules=rules)
    commit(pg_store, "t", append({"n": ["7", "seven"]}), rules=rules)
    got = rows(pg_store, "t")
    assert [(r["n"], r["n__text"]) for r in got] == [(1, None), (7, None), (None, "seven")]


def test_upsert_replaces_rows_sharing_the_key_and_the_last_of_a_batch_wins(
        pg_store: PostgresStore) -> None:
    commit(pg_store, "people", TableOp("init", options=TableOptions(unique_on=("id",))),
           append({"id": [1, 2, None], "name": ["a", "b", "nobody"]}))
    first = {r["id"]: r["patterns_id"] for r in rows(pg_store, "people")}
    result = commit(pg_store, "people", TableOp(
        "upsert", pa.table({"id": [2, 3, 3, None], "name": ["B", "c", "C", "null key"]})))
    assert result.rows_added == {"people": 3}
    got = rows(pg_store, "people")
    assert [(r["id"], r["name"]) for r in got] == [(1, "a"), (2, "B"), (3, "C"),
                                                   (None, "null key")]
    assert got[0]["patterns_id"] == first[1]
    assert got[1]["patterns_id"] > first[None]  # (a replaced row has a new id)


def test_upsert_without_a_key_says_how_to_give_one(pg_store: PostgresStore) -> None:
    with pytest.raises(NodeError, match="unique_on"):
        commit(pg_store, "t", TableOp("upsert", pa.table({"id": [1]})))


def test_replace_reset_and_kept_versions(pg_store: PostgresStore) -> None:
    commit(pg_store, "t", append({"x": [1, 2]}))
    commit(pg_store, "t", TableOp("replace", pa.table({"y": ["a"]})))
    commit(pg_store, "t", TableOp("reset"), keep_versions=2)
    commit(pg_store, "t", append({"z": [True]}), TableOp("truncate"), append({"z": [False]}))
    assert [(r["z"]) for r in rows(pg_store, "t")] == [False]
    with pg_store.read() as view:
        versions = view.tables.versions("t")
    assert [(v.version, v.reason, v.available) for v in versions] == [
        (1, "created", False), (2, "replace", True), (3, "reset", True)]
    meta = pg_store.table("t")
    assert meta is not None and meta.version == 3 and meta.kinds() == {"z": "bool"}


def test_created_column_and_hidden_id(pg_store: PostgresStore) -> None:
    options = TableOptions(add_created="created", add_monotonic_id=None)
    before = dt.datetime.now(dt.UTC)
    commit(pg_store, "t", TableOp("init", options=options), append({"x": [1]}))
    got = rows(pg_store, "t")
    assert list(got[0]) == ["x", "created"]
    assert before - dt.timedelta(seconds=1) <= got[0]["created"] <= dt.datetime.now(dt.UTC)

