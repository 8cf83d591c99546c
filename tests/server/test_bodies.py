"""Webhook bodies into records (property tests): any bytes give records or a BadBody with a
4xx and a message; records that come out are objects with text that is real UTF-8."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patterns.server.bodies import MAX_DEPTH, BadBody, BodyLimits, parse_records

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(st.characters(), max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=5),
    max_leaves=30)
TOKENS = [b"{", b"}", b"[", b"]", b'"\\ud800"', b"1e400", b"NaN", b"-Infinity", b",", b":",
          b'"a"', b"\x00", b"\xff", b"\\", b"9" * 5000, b"[" * 2000, b"{}", b'"\\udc00\\ud800"']


def check(body: bytes, limits: BodyLimits = BodyLimits()) -> None:
    try:
        records = parse_records(body, limits)
    except BadBody as bad:
        assert bad.status in (400, 413) and bad.message
        return
    assert records and all(isinstance(r, dict) and r for r in records)
    assert len(records) <= limits.max_records
    json.dumps(records, allow_nan=False).encode("utf-8")  # strict JSON, encodable


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_json_value_gives_records_or_a_clear_4xx(value: Any) -> None:
    check(json.dumps(value).encode())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS) | st.binary(max_size=8), max_size=30))
def test_any_bytes_give_records_or_a_clear_4xx(parts: list[bytes]) -> None:
    check(b"".join(parts), BodyLimits(max_records=3, max_fields=4))


@pytest.mark.parametrize("depth", [MAX_DEPTH - 2, MAX_DEPTH + 1, 900, 50_000])
def test_depth_is_bounded_however_deep(depth: int) -> None:
    body = b'{"a": ' + b"[" * depth + b"]" * depth + b"}"
    if depth <= MAX_DEPTH - 2:
        assert parse_records(body, BodyLimits()) == [{"a": json.loads(body)["a"]}]
    else:
        with pytest.raises(BadBody, match="nested too deeply"):
            parse_records(body, BodyLimits())


RECORD = st.dictionaries(st.text(max_size=8), JSON, min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(RECORD, st.integers(min_value=2**62, max_value=2**90))
def test_records_are_the_values_json_reads_whichever_parser_took_them(
        record: dict[str, Any], big: int) -> None:
    """(orjson parses most bodies, json the rest: a user sees json's values either way,
    integers past 64 bits staying integers.)"""
    for doc in (record, {**record, "big": big}, [record, {"x": -big}]):
        body = json.dumps(doc).encode()
        try:
            records = parse_records(body, BodyLimits())
        except BadBody:
            continue  # (field names differing only by case...: test_any_json_value_...)
        read = json.loads(body)
        expected = read if isinstance(read, list) else [read]
        assert records == expected and repr(records) == repr(expected)


@pytest.mark.parametrize(("body", "records"), [
    (b'{"n": 12345678901234567890123}', [{"n": 12345678901234567890123}]),
    (b'{"n": -9223372036854775809}', [{"n": -9223372036854775809}]),
    ('{"s": "é"}'.encode("utf-16"), [{"s": "é"}]),
    (b'\xef\xbb\xbf{"s": 1}', [{"s": 1}]),
    (b'{"a": 1, "a": 2}', [{"a": 2}]),
    (b'[{"x": 1.0}, {"x": -0.0}, {"x": 5e-324}]', [{"x": 1.0}, {"x": -0.0}, {"x": 5e-324}]),
])
def test_bodies_only_json_reads_give_its_records(body: bytes, records: list[Any]) -> None:
    got = parse_records(body, BodyLimits())
    assert got == records and repr(got) == repr(records)


@pytest.mark.parametrize(("body", "message"), [
    (b'{"a": NaN}', "NaN is not JSON"),
    (b'{"a": 1e400}', "too large for a float"),
    (b'{"a": "\\ud800"}', "lone UTF-16 surrogate"),
    (b'{"\\udfff": 1}', "lone UTF-16 surrogate"),
    (b'{"a": {"b": "\\udc00"}}', "lone UTF-16 surrogate"),
    (b'{"a": 1,}', "not valid JSON"),
    (b'{"A": 1, "a": 2}', "differ by more than upper/lower case"),
])
def test_bodies_refused_by_the_fast_parser_get_json_s_message(body: bytes,
                                                             message: str) -> None:
    with pytest.raises(BadBody, match=message):
        parse_records(body, BodyLimits())
