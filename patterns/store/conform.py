"""Types are a contract: incoming rows made to fit a table's columns, or refused.

Before rows reach a table, :func:`conform` checks every field against its column (the
table's, or the one ``schema=`` / ``schema_hints=`` declare): values of the column's kind, of
a kind it takes losslessly, or of a kind it may widen to (``int → float``, ``date →
timestamp``) fit; text is parsed for typed columns (ISO-8601 dates and timestamps, numbers,
``true``/``false``). A value that does not fit never retypes the column: the table's
**contract** says what happens to it:

- ``refuse`` (the default): nothing is written; the error names the table, field, value
  and record;
- ``variant``: the value is kept as text in a side column ``<field>__text`` (the field is
  null in that row);
- ``discard_value``: the field is null in that row;
- ``discard_row``: the row is dropped.

Field names are checked too (non-empty, no NUL, no two differing only by case: DuckDB's
column names are case-insensitive), and a table may have at most ``max_columns`` columns.
Everything here works on whole Arrow columns; only rows that do not parse at Arrow's speed
are looked at one by one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from patterns.errors import NodeError
from patterns.store.columns import PARSED_FROM_TEXT, kind_of_arrow, widen

CONTRACTS = ("refuse", "variant", "discard_value", "discard_row")
#: The default most columns a table may have (``settings.max_columns``).
MAX_COLUMNS = 1000
VARIANT_SUFFIX = "__text"

#: A column that is not declared widens for text that parses only as a wider kind.
_WIDER = {"int": "float", "date": "timestamp"}
_ARROW: dict[str, pa.DataType] = {
    "bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "date": pa.date32(),
    "timestamp": pa.timestamp("us"), "timestamptz": pa.timestamp("us", tz="UTC"),
    "time": pa.time64("us"), "bytes": pa.binary(),
}
# What ISO-8601 text looks like: a date, or a date and time with an optional offset.
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$"
_ISO_OFFSET = r"(Z|[+-]\d{2}:?\d{2})$"


@dataclass(frozen=True)
class Rules:
    """What a table's rows must obey: its contract, declared columns and column cap.
    ``infer_timestamps``: text fields new to the table whose every value is ISO-8601 become
    date or timestamp columns (webhook bodies, where JSON has no date type)."""

    contract: str = "refuse"
    declared: Mapping[str, str] = field(default_factory=dict)
    max_columns: int = MAX_COLUMNS
    infer_timestamps: bool = False


def conform(table: str, columns: Mapping[str, str], data: pa.Table, rules: Rules) -> pa.Table:
    """``data`` made to fit ``columns`` (field → kind) under ``rules``; raises
    :class:`NodeError` (with ``record``) for a value that does not fit a ``refuse`` table."""
    check_names(table, columns, data.column_names, rules.max_columns, data)
    drop: pa.ChunkedArray | None = None
    for name in list(data.column_names):
        index = data.schema.get_field_index(name)
        f = data.schema.field(index)
        incoming = kind_of_arrow(f.type, f)
        current = columns.get(name)
        declared = name in rules.declared
        if current is None and declared:
            current = rules.declared[name]
        if current is None:
            if rules.infer_timestamps and incoming == "text":
                data = data.set_column(index, name, _infer_iso(data.column(index)))
            continue
        if widen(current, incoming, declared=declared) is not None:
            continue
        values = data.column(index)
        if incoming == "json" and current in PARSED_FROM_TEXT and pa.types.is_string(f.type):
            # Scalars sent with nested values (all as JSON text): the scalars may fit.
            values, incoming = _unquoted(values), "text"
        if incoming == "text" and current in PARSED_FROM_TEXT:
            parsed, bad = parse_text(values, current)
            wider = _WIDER.get(current)
            if bad is not None and wider is not None and not declared:
                # ("2.5" for an int column: the column widens, as it would for 2.5)
                parsed_wider, bad_wider = parse_text(values, wider)
                if bad_wider is None or _count(bad_wider) < _count(bad):
                    parsed, bad = parsed_wider, bad_wider
        else:
            parsed = pa.nulls(len(values), _ARROW.get(current, pa.string()))
            bad = pc.is_valid(values)
        if bad is not None and pc.any(bad).as_py():
            if rules.contract == "refuse":
                at = pc.index(bad, True).as_py()
                raise NodeError(
                    f"table {table!r}: record {at}, field {name!r}: {_short(values[at].as_py())} "
                    f"does not fit the column, which holds {current} values; send {current} "
                    f"values (or null) for it, or give the table a contract that keeps such values "
                    f"(contract: variant, or discard_value) in graph.yml or table.init()",
                    record=at)
            if rules.contract == "discard_row":
                drop = bad if drop is None else pc.or_(drop, bad)
            elif rules.contract == "variant":
                side = name + VARIANT_SUFFIX
                kept = pc.if_else(bad, as_text(values), pa.scalar(None, pa.string()))
                if side in data.column_names:
                    at = data.schema.get_field_index(side)
                    kept = pc.coalesce(data.column(at).cast(pa.string()), kept)
                    data = data.set_column(at, side, kept)
                else:
                    data = data.append_column(side, kept)
                if columns.get(side, "text") != "text":
                    raise NodeError(f"table {table!r}: field {name!r} has values that do not "
                                    f"fit; its variant column {side!r} must be text, but holds "
                                    f"{columns[side]} values")
            parsed = pc.if_else(bad, pa.scalar(None, parsed.type), parsed)
        data = data.set_column(index, name, parsed)
    if drop is not None:
        data = data.filter(pc.invert(drop))
    return data


def project(columns: Mapping[str, str], data: pa.Table, rules: Rules) -> dict[str, str]:
    """The columns (field → kind) a table has once conformed ``data`` is added."""
    out = dict(columns)
    for f in data.schema:
        kind = kind_of_arrow(f.type, f)
        current = out.get(f.name)
        if current is None:
            out[f.name] = rules.declared.get(f.name, kind)
        else:
            out[f.name] = widen(current, kind, declared=f.name in rules.declared) or current
    return out


def check_names(table: str, columns: Mapping[str, str], names: list[str],
                max_columns: int, data: pa.Table | None = None) -> None:
    """Field names must be non-empty, free of NUL and differ by more than case; a table has
    at most ``max_columns`` columns (the error names the first record of ``data`` with a
    value for a field that is too many)."""
    lower = {c.lower(): c for c in columns}
    seen: dict[str, str] = {}
    new = 0
    for name in names:
        if not name or "\x00" in name:
            raise NodeError(f"table {table!r}: field name {name!r} cannot be a column; field "
                            f"names must be non-empty and contain no NUL character",
                            record=_first_value(data, name))
        key = name.lower()
        other = seen.get(key) or (lower.get(key) if lower.get(key) != name else None)
        if other is not None and other != name:
            raise NodeError(f"table {table!r}: field {name!r} and column {other!r} differ "
                            f"only by upper/lower case, which column names cannot; use one "
                            f"spelling", record=_first_value(data, name))
        seen[key] = name
        if key not in lower:
            new += 1
    if new and len(columns) + new > max_columns:  # (a table already past it keeps working)
        record = None
        if data is not None:
            extra = [n for n in names if n.lower() not in lower]
            valid = [pc.is_valid(data.column(n)) for n in extra[max_columns - len(columns):]]
            if valid and data.num_rows:
                anywhere = valid[0]
                for v in valid[1:]:
                    anywhere = pc.or_(anywhere, v)
                found = pc.index(anywhere, True).as_py()
                record = found if found >= 0 else 0
        raise NodeError(
            f"table {table!r}: {len(columns) + new} columns is more than the "
            f"{max_columns} a table may have ({len(columns)} now, {new} new fields); send "
            f"fewer distinct fields (nest them in one JSON field), or raise "
            f"settings.max_columns in graph.yml", record=record)


def _first_value(data: pa.Table | None, name: str) -> int | None:
    """The first record of ``data`` with a value for ``name`` (0: none has one)."""
    if data is None or not data.num_rows:
        return None
    found = pc.index(pc.is_valid(data.column(name)), True).as_py()
    return found if found >= 0 else 0


def parse_text(values: pa.ChunkedArray | pa.Array, kind: str
               ) -> tuple[pa.Array | pa.ChunkedArray, pa.Array | pa.ChunkedArray | None]:
    """Text parsed as ``kind``: the parsed values, and a mask of the values that do not
    parse (null text parses to null), or None when they all do."""
    target = _ARROW[kind]
    if kind in ("timestamp", "timestamptz"):
        parsed = _parse_timestamps(values, target)
        if parsed is not None:
            return parsed, None
    else:
        try:
            return pc.cast(pc.utf8_trim_whitespace(values), target), None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    # Some value does not parse: look at them one by one to find which.
    out: list[Any] = []
    bad: list[bool] = []
    for v in values.to_pylist():
        value = None if v is None else _parse_one(v.strip(), kind, target)
        out.append(value)
        bad.append(v is not None and value is None)
    return pa.array(out, target), pa.array(bad) if any(bad) else None


def _unquoted(values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """JSON texts with JSON strings unquoted (``"2024-01-01"`` → ``2024-01-01``); objects
    and arrays stay as they are (and parse as no scalar)."""
    quoted = pc.and_(pc.starts_with(values, '"'), pc.ends_with(values, '"'))
    return pc.if_else(quoted, pc.utf8_slice_codeunits(values, 1, -1), values)


def _count(mask: pa.Array | pa.ChunkedArray) -> int:
    return int(pc.sum(mask).as_py() or 0)


def _parse_timestamps(values: pa.ChunkedArray | pa.Array, target: pa.DataType
                      ) -> pa.Array | pa.ChunkedArray | None:
    """ISO-8601 text as timestamps, with or without an offset (both taken as UTC), at Arrow's
    speed; None when some text is not ISO-8601."""
    text = pc.utf8_trim_whitespace(values)
    if not pc.all(pc.match_substring_regex(text, _ISO_TIMESTAMP + "|" + _ISO_DATE)).as_py():
        return None
    aware = pc.match_substring_regex(text, _ISO_OFFSET)
    try:
        naive = pc.cast(pc.if_else(aware, pa.scalar(None, pa.string()), text),
                        pa.timestamp("us"))
        zoned = pc.cast(pc.if_else(aware, text, pa.scalar(None, pa.string())),
                        pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # (a 2024-02-30): found one by one
    naive = pc.assume_timezone(naive, "UTC")
    both = pc.coalesce(zoned, naive)
    return both.cast(target) if target.tz is None else both


def _parse_one(text: str, kind: str, target: pa.DataType) -> Any:
    """One text parsed as ``kind``, or None when it does not spell such a value."""
    try:
        if kind in ("timestamp", "timestamptz"):
            value = dt.datetime.fromisoformat(text)
            if value.tzinfo is not None:
                value = value.astimezone(dt.UTC)
                return value if kind == "timestamptz" else value.replace(tzinfo=None)
            return value.replace(tzinfo=dt.UTC) if kind == "timestamptz" else value
        if kind == "date":
            if len(text) != 10:
                return None  # a timestamp's time of day would be lost
            return dt.date.fromisoformat(text)
        if kind == "time":  # (Arrow casts no text to times)
            return dt.time.fromisoformat(text)
        return pc.cast(pa.array([text]), target)[0].as_py()
    except (ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _infer_iso(values: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """A text column whose every value is ISO-8601: dates, or timestamps (with a time zone
    when any has an offset; mixed dates and timestamps are timestamps)."""
    if values.null_count == len(values):
        return values
    text = values.drop_null()
    if pc.all(pc.match_substring_regex(text, _ISO_DATE)).as_py():
        parsed, bad = parse_text(values, "date")
        return values if bad is not None else parsed
    if not pc.all(pc.match_substring_regex(text, _ISO_TIMESTAMP + "|" + _ISO_DATE)).as_py():
        return values
    kind = "timestamptz" if pc.any(pc.match_substring_regex(text, _ISO_OFFSET)).as_py() \
        else "timestamp"
    parsed, bad = parse_text(values, kind)
    return values if bad is not None else parsed


def as_text(values: pa.ChunkedArray | pa.Array) -> pa.Array | pa.ChunkedArray:
    """Values as text (nested ones as JSON), for a variant column."""
    try:
        return pc.cast(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        import json

        return pa.array([None if v is None else json.dumps(v, default=str)
                         for v in values.to_pylist()], pa.string())


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."
