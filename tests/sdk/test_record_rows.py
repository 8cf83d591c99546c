"""Records read from Arrow (patterns/sdk/_rows.py, arrow_records in patterns/sdk/table.py)
are exactly what ``to_pylist`` and ``json.loads`` made before: the same values, of the same
types, in plain dicts with the same key order, for every column type a table can hold."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from patterns.sdk._rows import rows
from patterns.sdk.table import arrow_records

INT64 = st.integers(-(2**63), 2**63 - 1)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
TEXT = st.text(max_size=12)
ZONES = ["UTC", "Europe/Amsterdam", "America/New_York"]
TIMES = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | FLOATS
    | st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("\ud800\"\\\n")),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12)

#: Arrow type -> values of it (a column may hold nulls too).
COLUMNS: dict[str, tuple[pa.DataType, st.SearchStrategy[Any]]] = {
    "int64": (pa.int64(), INT64),
    "int32": (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    "uint64": (pa.uint64(), st.integers(0, 2**64 - 1)),
    "float64": (pa.float64(), FLOATS),
    "float32": (pa.float32(), st.floats(width=32)),
    "bool": (pa.bool_(), st.booleans()),
    "text": (pa.string(), TEXT),
    "large_text": (pa.large_string(), TEXT),
    "binary": (pa.binary(), st.binary(max_size=8)),
    "decimal": (pa.decimal128(20, 4), st.decimals(min_value=-(10**15), max_value=10**15,
                                                    places=4, allow_nan=False)),
    "date": (pa.date32(), st.dates()),
    "timestamp": (pa.timestamp("us"), TIMES),
    "timestamp_tz": (pa.timestamp("us", tz="Europe/Amsterdam"),
                     TIMES.map(lambda t: t.replace(tzinfo=ZoneInfo("UTC")))),
    "duration": (pa.duration("us"), st.timedeltas(min_value=dt.timedelta(days=-999),
                                                  max_value=dt.timedelta(days=999))),
    "list": (pa.list_(pa.int64()), st.lists(st.none() | INT64, max_size=4)),
    "struct": (pa.struct([("a", pa.int64()), ("b", pa.string())]),
               st.fixed_dictionaries({"a": st.none() | INT64, "b": st.none() | TEXT})),
    "null": (pa.null(), st.none()),
}


def same(a: Any, b: Any) -> bool:
    """Equal, of the same type, NaN equal to NaN and -0.0 told from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a)
                                                     == math.copysign(1, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dt.datetime):
        return a == b and a.tzinfo == b.tzinfo and a.utcoffset() == b.utcoffset()
    return bool(a == b)


@st.composite
def batches(draw: st.DrawFn) -> pa.RecordBatch:
    names = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=6,
                          unique=True))
    n = draw(st.integers(0, 20))
    nulls = draw(st.booleans())
    arrays = []
    for name in names:
        kind, values = COLUMNS[name]
        column = draw(st.lists(st.none() | values if nulls else values, min_size=n,
                               max_size=n))
        arrays.append(pa.array(column, type=kind))
    return pa.RecordBatch.from_arrays(arrays, names=[f"c_{name}" for name in names])


@settings(max_examples=300, deadline=None)
@given(batches())
def test_rows_are_what_to_pylist_made(batch: pa.RecordBatch) -> None:
    expected = batch.to_pylist()
    got = rows(batch)
    assert all(type(r) is dict for r in got)
    assert same(got, expected), (got, expected)
    assert same(rows(pa.Table.from_batches([batch, batch])), expected + expected)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.none() | JSON_VALUES, max_size=12), st.integers(-5, 5))
def test_json_columns_are_parsed_as_json_loads_parsed_them(values: list[Any],
                                                           n: int) -> None:
    texts = [None if v is None else json.dumps(v) for v in values]
    batch = pa.RecordBatch.from_arrays(
        [pa.array(texts, pa.string()), pa.array([n] * len(texts), pa.int64())],
        names=["doc", "n"])
    expected = [{"doc": None if t is None else json.loads(t), "n": n} for t in texts]
    assert same(arrow_records(batch, ["doc"]), expected)


def test_a_json_column_that_is_not_json_names_the_value() -> None:
    batch = pa.RecordBatch.from_arrays([pa.array(['{"a": 1}', "{oops"])], names=["doc"])
    try:
        arrow_records(batch, ["doc"])
    except ValueError as exc:
        assert "Expecting property name" in str(exc)
    else:
        raise AssertionError("a broken JSON text was read")


def test_many_columns_and_odd_names_make_the_same_records() -> None:
    names = [f"c{i}" for i in range(300)] + ["'", '"', "\\", "a b", "", "ü", "__class__"]
    batch = pa.RecordBatch.from_arrays([pa.array([i, None]) for i in range(len(names))],
                                       names=names)
    assert rows(batch) == batch.to_pylist()
    assert list(rows(batch)[0]) == names
    small = batch.select(list(range(300, len(names))))
    assert rows(small) == small.to_pylist()


def test_decimals_and_time_zones_survive() -> None:
    when = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)
    batch = pa.RecordBatch.from_arrays(
        [pa.array([decimal.Decimal("1.2300")], pa.decimal128(10, 4)),
         pa.array([when], pa.timestamp("us", tz="Europe/Amsterdam"))], names=["d", "t"])
    (record,) = rows(batch)
    assert str(record["d"]) == "1.2300"
    assert record["t"] == when and record["t"].utcoffset() == dt.timedelta(hours=2)
