"""Webhook request bodies: JSON turned into records, with limits, before anything else.

A body is refused (nothing stored, the answer names the limit and the setting that moves it)
when it is not strict JSON — ``NaN``, ``Infinity``, a number too large for a float such as
``1e400``, a lone UTF-16 surrogate (``"\\ud800"``), nesting deeper than :data:`MAX_DEPTH` —,
when it holds no record or a record with no field, or when it passes a per-request limit:
records per request, fields per record (nested fields counted). With the body size limit
(``settings.max_body_bytes``), these keep the memory and time a request costs proportional
to the bytes received.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

DEFAULT_MAX_RECORDS: Final = 10_000
DEFAULT_MAX_FIELDS: Final = 1_000
#: Deepest nesting of objects and arrays in a body (the body itself is level 1).
MAX_DEPTH: Final = 32
#: Every digit becomes "0", any other byte "x": 19 digits in a row are then one ``in`` away
#: (a regular expression's search took twice the time on a small body, 20 times on a large one).
_DIGITS: Final = bytes(0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))
_RUN: Final = b"0" * 19


def has_long_number(data: bytes) -> bool:
    """True when ``data`` holds 19 ASCII digits in a row (a number that may not fit 64
    bits: orjson would read it as a float, json as an int)."""
    return _RUN in data.translate(_DIGITS)


class BadBody(Exception):
    """The body cannot become records: ``status`` (400 or 413) and a message for the sender."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class BodyLimits:
    max_records: int = DEFAULT_MAX_RECORDS
    max_fields: int = DEFAULT_MAX_FIELDS

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> BodyLimits:
        """The limits a webhook's ``settings:`` ask for (the defaults otherwise)."""
        return cls(int(settings.get("max_records_per_request") or DEFAULT_MAX_RECORDS),
                   int(settings.get("max_fields_per_record") or DEFAULT_MAX_FIELDS))


def parse_records(body: bytes, limits: BodyLimits) -> list[dict[str, Any]]:
    """The records a body holds: a JSON object (one record) or an array of objects."""
    try:
        doc, texts = _fast_loads(body), False  # (orjson refuses a lone surrogate itself)
    except ValueError:  # json says why (or takes it: UTF-16, a long integer...)
        doc, texts = _loads(body), True
    records = [doc] if isinstance(doc, dict) else doc
    if not isinstance(records, list) or not records or \
            not all(isinstance(r, dict) for r in records):
        raise BadBody(400, "send a JSON object, or a non-empty array of objects; each object "
                           "becomes a record")
    if len(records) > limits.max_records:
        raise BadBody(413, f"the body holds {len(records):,} records, more than this "
                           f"webhook's limit of {limits.max_records:,} a request "
                           f"(settings.max_records_per_request): send them in smaller batches")
    for index, record in enumerate(records):
        _check_record(record, index, len(records), limits, texts)
    return records


def _fast_loads(body: bytes) -> Any:
    """orjson's parse, where it gives what json's would: it refuses what is not strict JSON
    (NaN, 1e400, a lone surrogate, any encoding but UTF-8...: ValueError), and turns an
    integer past 64 bits into a float, so a body with 19 digits in a row goes to json."""
    if has_long_number(body):
        raise ValueError("a long number: json parses it")
    return orjson.loads(body)


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise BadBody(400, f"the body is nested too deeply (at most {MAX_DEPTH} levels of "
                           f"objects and arrays)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadBody(400, f"the body is not valid JSON: {exc}") from None


def _check_record(record: dict[str, Any], index: int, count: int, limits: BodyLimits,
                  texts: bool = True) -> None:
    """(``texts``: check that every string is text; False when the parser did.)"""
    if not record:
        raise BadBody(400, f"{_where(index, count)} is {{}}: a record needs at least one field")
    names = {k.lower() for k in record}
    if "" in names or len(names) != len(record):
        raise BadBody(400, "field names must be non-empty and differ by more than upper/lower "
                           "case (a table's columns do): "
                           f"{', '.join(repr(k) for k in record)[:200]}")
    if not texts and len(record) <= limits.max_fields:
        for value in record.values():  # (a loop: a generator costs a call per value)
            if isinstance(value, (dict, list)):
                break
        else:
            return  # flat (most records): nothing nested to count, its text checked
    where = _where(index, count)
    fields = 0
    stack: list[tuple[Any, int]] = [(record, 2)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            fields += len(value)
            if fields > limits.max_fields:
                raise BadBody(413, f"{where} has more than this webhook's limit of "
                                   f"{limits.max_fields:,} fields, nested fields counted "
                                   f"(settings.max_fields_per_record)")
            children = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            children = value
        else:
            if isinstance(value, str):
                _check_text(value, where)
            continue
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= MAX_DEPTH:
                    raise BadBody(400, f"{where} is nested too deeply (at most {MAX_DEPTH} "
                                       f"levels of objects and arrays)")
                stack.append((child, depth + 1))
            elif isinstance(child, str):
                _check_text(child, where)


def _where(index: int, count: int) -> str:
    return f"record {index + 1} of {count}" if count > 1 else "the record"


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadBody(400, f"{where} holds a lone UTF-16 surrogate ({text[exc.start]!r} at "
                           f"character {exc.start} of {text[:40]!r}), which is not text: send "
                           f"a valid pair or the character itself") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (send a number, or null)")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:40]} is too large for a float (like Infinity, "
                         f"it cannot be stored)")
    return value
