"""convert_parameter and references: what users write becomes the declared type, or a clear error."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patterns.errors import ConfigError
from patterns.graph import MISSING, ParameterDecl, convert_parameter, is_reference, parse_reference


def decl(type_name: str) -> ParameterDecl:
    return ParameterDecl(name="p", type=type_name, default=MISSING, line=1)


def convert(type_name: str, raw: Any) -> Any:
    return convert_parameter(decl(type_name), raw, node="enrich.py")


@pytest.mark.parametrize(
    ("type_name", "raw", "expected"),
    [
        ("str", "hello", "hello"),
        ("str", 5, "5"),
        ("str", True, "true"),
        ("str", date(2020, 1, 2), "2020-01-02"),
        ("int", 12, 12),
        ("int", "12", 12),
        ("int", " -3 ", -3),
        ("int", 4.0, 4),
        ("float", 1, 1.0),
        ("float", "2.5", 2.5),
        ("float", "1e3", 1000.0),
        ("bool", True, True),
        ("bool", "TRUE", True),
        ("bool", "yes", True),
        ("bool", "1", True),
        ("bool", "No", False),
        ("bool", "false", False),
        ("bool", "0", False),
        ("bool", 0, False),
        ("datetime", "2000-01-01", datetime(2000, 1, 1)),
        ("datetime", "2000-01-01T10:20:30", datetime(2000, 1, 1, 10, 20, 30)),
        (
            "datetime",
            "2000-01-01T10:00:00Z",
            datetime(2000, 1, 1, 10, tzinfo=UTC),
        ),
        (
            "datetime",
            "2000-01-01T10:00:00+02:00",
            datetime(2000, 1, 1, 10, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("datetime", date(2000, 1, 1), datetime(2000, 1, 1)),
        ("datetime", datetime(2000, 1, 1, 5), datetime(2000, 1, 1, 5)),
        ("date", "2000-01-02", date(2000, 1, 2)),
        ("date", date(2000, 1, 2), date(2000, 1, 2)),
        ("date", datetime(2000, 1, 2), date(2000, 1, 2)),
        ("list", [1, 2], [1, 2]),
        ("list", '["a", 1]', ["a", 1]),
        ("list", "a, b,c", ["a", "b", "c"]),
        ("list", "", []),
        ("connection", {"key": "k"}, {"key": "k"}),
        ("connection", '{"key": "k"}', {"key": "k"}),
        ("int", None, None),
    ],
)
def test_good_values(type_name: str, raw: Any, expected: Any) -> None:
    value = convert(type_name, raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("type_name", "raw"),
    [
        ("str", ["a"]),
        ("int", True),
        ("int", "12.5"),
        ("int", 1.5),
        ("int", "ten"),
        ("float", False),
        ("float", "fast"),
        ("bool", "maybe"),
        ("bool", 2),
        ("datetime", "yesterday"),
        ("datetime", 5),
        ("date", "2000-13-01"),
        ("date", datetime(2000, 1, 1, 12)),
        ("list", '{"a": 1}'),
        ("list", 3),
        ("connection", "[1]"),
        ("connection", "not json"),
    ],
)
def test_bad_values_say_what_and_where(type_name: str, raw: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        convert(type_name, raw)
    message = str(caught.value)
    assert "parameter 'p'" in message
    assert "enrich.py" in message
    assert repr(raw) in message
    assert "--param p=VALUE" in message and "parameter_values" in message


def test_unknown_type() -> None:
    with pytest.raises(ConfigError, match="unknown type 'decimal'"):
        convert("decimal", "1")


@given(st.integers())
def test_int_round_trip(value: int) -> None:
    assert convert("int", str(value)) == value
    assert convert("int", value) == value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_round_trip(value: float) -> None:
    assert convert("float", repr(value)) == value
    assert convert("float", str(value)) == value


@given(st.booleans(), st.sampled_from([str, lambda b: str(b).lower(), lambda b: str(int(b))]))
def test_bool_round_trip(value: bool, render: Any) -> None:
    assert convert("bool", render(value)) is value


@given(st.dates())
def test_date_round_trip(value: date) -> None:
    assert convert("date", value.isoformat()) == value
    assert convert("datetime", value.isoformat()) == datetime.combine(value, datetime.min.time())


@given(st.datetimes(timezones=st.none() | st.just(UTC)))
def test_datetime_round_trip(value: datetime) -> None:
    assert convert("datetime", value.isoformat()) == value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("${{ api_key }}", ("secret", "api_key")),
        ("${{api_key}}", ("secret", "api_key")),
        ("${{ connection.stripe }}", ("connection", "stripe")),
        ("  ${{ connection.my-db }} ", ("connection", "my-db")),
    ],
)
def test_references(raw: str, expected: tuple[str, str]) -> None:
    assert is_reference(raw)
    assert parse_reference(raw) == expected


@pytest.mark.parametrize(
    "raw", ["${{ }}", "${{ a b }}", "${ a }", "${{ secrets.x.y }}", "x ${{ a }}", 5, "plain"]
)
def test_not_references(raw: Any) -> None:
    assert not is_reference(raw)
    with pytest.raises(ConfigError, match=r"connection\.name"):
        parse_reference(raw)
