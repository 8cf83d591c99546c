"""Appended records become Arrow the same way whichever path converts them: records that all
have the same fields (converted column by column) get the types and values they would get
among records whose fields differ (converted as one struct); what a column's type is never
depends on whether some record lacks a field; and a long list converted a slice at a time
makes the very table (types, values, the record an error names) it would at once."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from patterns.errors import NodeError
from patterns.sdk import _convert
from patterns.sdk._convert import records_to_arrow
from tests.sdk.test_roundtrip import COLUMN_TYPES, tables

mixed = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                  st.floats(allow_nan=True), st.text(max_size=5),
                  st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 1, 1)),
                  st.datetimes(min_value=dt.datetime(1900, 1, 1),
                               max_value=dt.datetime(2200, 1, 1)),
                  st.times(), st.binary(max_size=3), st.uuids(),
                  st.decimals(allow_nan=False, allow_infinity=False, places=2),
                  st.lists(st.integers(-5, 5), max_size=3),
                  st.dictionaries(st.sampled_from("xyz"), st.integers(-5, 5), max_size=2))


@st.composite
def same_fields(draw: Any) -> list[dict[str, Any]]:
    """Records that all have the same fields: one type per field, or any mix of values."""
    fields = draw(st.dictionaries(st.text("abcdefgh", min_size=1, max_size=6),
                                  st.sampled_from([*sorted(COLUMN_TYPES), "mixed"]),
                                  min_size=1, max_size=5))
    values = {kind: COLUMN_TYPES.get(kind, mixed) for kind in fields.values()}
    return [{name: draw(st.one_of(st.none(), values[kind])) for name, kind in fields.items()}
            for _ in range(draw(st.integers(1, 6)))]


def converted(records: list[dict[str, Any]]) -> pa.Table | str:
    try:
        return records_to_arrow(records, "t")
    except NodeError as exc:
        return str(exc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=same_fields())
# Arrow alone would make these a float column (1.0 for True) and a date column (dropping
# the time of day): both paths must not.
@example(records=[{"a": 1.5}, {"a": True}])
@example(records=[{"a": dt.date(2024, 5, 1)}, {"a": dt.datetime(2024, 5, 1, 12, 30)}])
# ... and this a date column holding 1970-01-01 for the 0.
@example(records=[{"a": dt.date(2024, 5, 1)}, {"a": 0}])
def test_records_with_the_same_fields_convert_as_among_other_records(
        records: list[dict[str, Any]]) -> None:
    alone = converted(records)
    # The same records followed by one without any field take the general path.
    among = converted([*records, {}])
    if isinstance(alone, str) or isinstance(among, str):
        assert alone == among
        return
    assert alone.schema.equals(among.schema, check_metadata=True), (alone.schema, among.schema)
    assert repr(alone.to_pylist()) == repr(among.slice(0, len(records)).to_pylist())  # (NaN)


LEAVES = {**COLUMN_TYPES, "mixed": mixed, "bytes": st.binary(max_size=3), "none": st.none(),
          "intfloat": st.one_of(st.integers(-5, 5), st.floats(allow_nan=True))}
shapes = st.recursive(st.sampled_from(sorted(LEAVES)), lambda inner: st.dictionaries(
    st.text("abc\x00", max_size=2), inner, min_size=1, max_size=3), max_leaves=6)


@st.composite
def nested_alike(draw: Any) -> list[Any]:
    """Dicts of one shape (the same keys, each a leaf of one kind or such dicts again), now
    and then one of another shape or not a dict, as a field's values."""
    shape = draw(st.dictionaries(st.text("abc", min_size=1, max_size=2), shapes,
                                 min_size=1, max_size=3))

    def value(shape: Any) -> Any:
        if draw(st.integers(0, 19)) == 0:  # (an odd one out)
            return draw(st.one_of(st.none(), mixed, st.dictionaries(st.text("ab", max_size=2),
                                                                    mixed, max_size=2)))
        if isinstance(shape, dict):
            return {key: value(inner) for key, inner in shape.items()}
        return draw(st.one_of(st.none(), LEAVES[shape])) if shape != "none" else None

    return [value(shape) for _ in range(draw(st.integers(1, 6)))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=nested_alike())
@example(values=[{"a": dt.date(2024, 5, 1)}, {"a": 5}])  # (alone a date column; not in one)
@example(values=[{"a": True}, {"a": 1.5}])  # (a float column: Arrow's 1.0 for True)
@example(values=[{"a": {"b": 1}}, {"a": {"b": "x"}}])  # (refused either way)
@example(values=[{"a": 1, "b": None}, {"b": 2, "a": 3}])  # (the same keys, in another order)
def test_a_field_of_plain_dicts_is_the_struct_arrow_would_infer(values: list[Any]) -> None:
    """Built field by field (the quicker way for dicts that all have the same keys), a
    column of dicts is exactly the struct ``pa.array`` infers, or left to it; and the
    records holding it convert as they would among other records."""
    built = _convert._plain_struct(values) if type(values[0]) is dict else None
    if built is not None:
        inferred = pa.array(values)
        assert built.type.equals(inferred.type), (built.type, inferred.type)
        assert built.equals(inferred)
    records = [{"f": v, "n": i} for i, v in enumerate(values)]
    alone, among = converted(records), converted([*records, {}])
    if isinstance(alone, str) or isinstance(among, str):
        assert alone == among
        return
    assert alone.schema.equals(among.schema, check_metadata=True), (alone.schema, among.schema)
    assert repr(alone.to_pylist()) == repr(among.slice(0, len(records)).to_pylist())  # (NaN)


def test_a_value_that_cannot_be_stored_is_named_on_either_path() -> None:
    for records in ([{"a": 1, "b": {1, 2}}, {"a": 2, "b": [3]}],
                    [{"a": 1, "b": [3]}, {"a": 2, "b": {1, 2}}]):
        with pytest.raises(NodeError, match=r"record \d, field 'b'.*set"):
            records_to_arrow(records, "t")


def at_once(records: list[dict[str, Any]]) -> pa.Table | str:
    saved = _convert.SLICE_ROWS
    _convert.SLICE_ROWS = len(records) + 1
    try:
        return converted(records)
    finally:
        _convert.SLICE_ROWS = saved


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.one_of(same_fields(), tables()), slice_rows=st.integers(1, 3))
@example(records=[{"a": {"x": 1}}, {"a": {"y": 1}}], slice_rows=1)  # (not one struct: JSON)
@example(records=[{"a": 1}, {"a": "x"}], slice_rows=1)  # (int and text: text)
@example(records=[{"a": 1}, {"a": {1, 2}}], slice_rows=1)  # (refused: record 1, not 0)
@example(records=[{"b": [], "c": None}, {"c": [False, 0]}], slice_rows=1)  # (JSON: both)
@example(records=[{"b": [], "a": None}, {"b": None, "a": uuid.UUID(int=7)}],
         slice_rows=1)  # (one slice on the slow path, a list in the other: JSON, as at once)
@example(records=[{"t": None}, {"t": [1, None]}], slice_rows=1)  # (nulls, then JSON text)
def test_a_long_list_converts_in_slices_as_it_would_at_once(
        records: list[dict[str, Any]], slice_rows: int) -> None:
    whole = at_once(records)
    saved = _convert.SLICE_ROWS
    _convert.SLICE_ROWS = slice_rows
    try:
        sliced = converted(records)
    finally:
        _convert.SLICE_ROWS = saved
    if isinstance(whole, str) or isinstance(sliced, str):
        assert sliced == whole
        return
    assert sliced.schema.equals(whole.schema, check_metadata=True), (sliced.schema, whole.schema)
    assert repr(sliced.to_pylist()) == repr(whole.to_pylist())
