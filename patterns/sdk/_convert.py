"""Records (dicts, DataFrames, Arrow) to Arrow tables, ready to ship to the engine.

When every record is a dict with the same keys (the usual case), each column is typed and
converted by ``pyarrow.array`` on its own (a column of dicts with the same keys and plain
values field by field, into the struct ``pyarrow.array`` would infer); otherwise Arrow
infers a struct over the union of the records' keys (a record without a key gets null
there). When Arrow cannot type a column (an int then a string, an int past 64 bits...) the
column takes the slow path: its values are typed one by one. Ints and floats together are
floats; dates and datetimes together are timestamps (a date is its midnight; with any aware
datetime, naive ones are taken as UTC); nested values become JSON text; any other mix (a
bool and a number, a number and text) is sent as text, which the engine parses for a typed
column or refuses there, naming the record (it knows the table's columns, which this side
does not). UUIDs are text, Decimals numbers, ``pd.NaT`` null. Values that cannot be stored
(a set, an arbitrary object, a dict with non-string keys) and field names that cannot be
columns (empty, with a NUL, two differing only by case) raise :class:`NodeError` naming the
table, the field and the record; nothing of the batch is sent.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import json
import operator
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from patterns.errors import NodeError

JSON_META = {b"patterns.json": b"1"}
_TIMES = frozenset({"date", "datetime", "datetimetz"})


#: Records are converted this many at a time: about a quarter less CPU per record than
#: converting a million at once (the values just read are still in the CPU's caches).
SLICE_ROWS = 10_000


def records_to_arrow(records: Sequence[dict[str, Any]], table: str) -> pa.Table:
    if len(records) > SLICE_ROWS:
        return _in_slices(records, table)
    return _convert(records, table)


def _in_slices(records: Sequence[dict[str, Any]], table: str) -> pa.Table:
    """The records converted :data:`SLICE_ROWS` at a time, when that makes the same table as
    converting them at once: every slice gives each field the same type (or none, where a
    slice has only nulls for it). Otherwise, and to name a refused record by its place in
    ``records``, they are converted at once."""
    try:
        converted = [_converted(records[at:at + SLICE_ROWS], table)
                     for at in range(0, len(records), SLICE_ROWS)]
    except NodeError:
        return _convert(records, table)
    if len({slow for _, slow in converted}) > 1:
        # What sent one slice down the slow path sends the whole list there, which types
        # fields the fast path infers (a nested list, a decimal) its own way.
        return _convert(records, table)
    parts = [part for part, _ in converted]
    if sum(part.num_rows for part in parts) != len(records):
        return _convert(records, table)  # (a slice of records without fields)
    fields: dict[str, pa.Field] = {}
    for part in parts:
        for f in part.schema:
            if not pa.types.is_null(f.type) and \
                    not fields.setdefault(f.name, f).equals(f, check_metadata=True):
                return _convert(records, table)  # (a type only all the values decide)
    if any(f.metadata == JSON_META for f in fields.values()) and \
            any(pa.types.is_nested(f.type) for f in fields.values()):
        # A slice that took the slow path sent its nested values as JSON text; at once,
        # the slow path would take every nested field there (a list in another slice too).
        return _convert(records, table)
    # (a field a slice lacks, or has only nulls for, is null there; the promotion keeps the
    # first slice's field, so each field then takes its metadata — JSON text — back)
    whole = pa.concat_tables(parts, promote_options="default")
    return pa.table(whole.columns, schema=pa.schema(
        [fields.get(f.name, f) for f in whole.schema]))


class Disagree(Exception):
    """Parts of a list (:func:`in_parts`) that would not make the table converting the
    whole list at once makes: the list is converted at once instead."""


def in_parts(records: Sequence[dict[str, Any]], table: str, part_rows: int
             ) -> Iterator[pa.Table]:
    """``records`` as Arrow tables of ``part_rows`` records (the last one shorter), made
    :data:`SLICE_ROWS` at a time, so the first can be shipped while the rest are converted.
    Together they are exactly the table :func:`records_to_arrow` makes of the whole list:
    every slice must have the first one's schema (the same fields, in the same order, of
    the same types), else :class:`Disagree` is raised (as is any of the cases
    :func:`_in_slices` converts at once) and the caller, having taken back the parts it
    shipped, converts the list at once. A refused record raises its :class:`NodeError`
    (naming its place in the slice: the caller converts the list at once to name it)."""
    schema: pa.Schema | None = None
    slow_first = False
    group: list[pa.Table] = []
    rows = 0
    for at in range(0, len(records), SLICE_ROWS):
        chunk = records[at:at + SLICE_ROWS]
        part, slow = _converted(chunk, table)
        if schema is None:
            schema, slow_first = part.schema, slow
            if not schema.names or (
                    any(f.metadata == JSON_META for f in schema)
                    and any(pa.types.is_nested(f.type) for f in schema)):
                raise Disagree  # (records without fields; JSON text beside nested fields)
        if slow != slow_first or part.num_rows != len(chunk) \
                or not part.schema.equals(schema, check_metadata=True):
            raise Disagree
        group.append(part)
        rows += part.num_rows
        if rows >= part_rows:
            whole = pa.concat_tables(group)
            yield whole.slice(0, part_rows)
            rest = whole.slice(part_rows)
            group, rows = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
    if group:
        yield pa.concat_tables(group)


def _convert(records: Sequence[dict[str, Any]], table: str) -> pa.Table:
    return _converted(records, table)[0]


def _converted(records: Sequence[dict[str, Any]], table: str) -> tuple[pa.Table, bool]:
    """The records as a table, and whether that took the slow path (column by column)."""
    if not records:
        return pa.table({}), False
    same = _same_keys(records, table)
    if same is not None:
        return same, False
    try:
        # One pass in C: Arrow infers a struct over the union of the records' keys (in the
        # order they first appear; a record without a key gets null there).
        rows = pa.array(records)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError,
            TypeError, ValueError):  # (a UUID is an extension type Arrow cannot infer)
        return _slow_path(records, _keys(records, table), table), True
    if not pa.types.is_struct(rows.type) or rows.null_count:
        # A record that is not a dict (None, a number...): _keys raises, naming it.
        return _slow_path(records, _keys(records, table), table), True
    # Arrow takes a bytes key for the text it spells (b"n" for "n", silently merging the
    # two): field names must be strings. The set of all keys, gathered at C speed.
    if not all(isinstance(k, str) for k in set(itertools.chain.from_iterable(records))):
        return _slow_path(records, _keys(records, table), table), True  # (_keys raises)
    if not rows.type.num_fields:
        return pa.table({}), False  # records without fields: nothing to append
    names = [rows.type.field(i).name for i in range(rows.type.num_fields)]
    _check_names(names, records, table)
    for i, name in enumerate(names):
        t = rows.type.field(i).type
        # Arrow types [date, datetime] as dates, dropping the time of day, and [1.5, True]
        # as floats (1.0): such columns take the slow path.
        if (pa.types.is_date(t) and any(issubclass(k, dt.datetime) for k in _types(records, name))) \
                or (pa.types.is_floating(t) and bool in _types(records, name)):
            return _slow_path(records, names, table), True
    return _check_nested(pa.Table.from_struct_array(rows), records, table), False


def _same_keys(records: Sequence[dict[str, Any]], table: str) -> pa.Table | None:
    """The usual case, about a third quicker than inferring a struct: plain dicts that all
    have the first one's keys, each column typed on its own (by the same inference Arrow
    uses for a struct's fields). None for anything else (the general path decides)."""
    if set(map(type, records)) != {dict}:
        return None
    names = list(records[0])
    # Every record has as many keys as the first, and each of the first's keys (no KeyError
    # below): the same keys.
    if not names or set(map(len, records)) != {len(names)} \
            or not all(type(k) is str for k in names):
        return None
    arrays: list[pa.Array | pa.ChunkedArray] = []
    try:
        for name in names:
            values = list(map(operator.itemgetter(name), records))
            arr = _column(values)
            t = arr.type
            # Arrow types [date, datetime] as dates, dropping the time of day, and [1.5,
            # True] as floats (1.0): such columns take the general path (and its slow one).
            # Alone (not in a struct), it also takes a number among dates, datetimes or
            # times for a count of days or microseconds: those too.
            if isinstance(t, pa.BaseExtensionType):
                return None  # (a UUID: the general path sends it as text)
            if pa.types.is_temporal(t):
                kinds = set(map(type, values))
                if (pa.types.is_date(t) and any(issubclass(k, dt.datetime) for k in kinds)) \
                        or not all(k is type(None) or issubclass(k, (dt.date, dt.time))
                                   for k in kinds):
                    return None
            elif pa.types.is_floating(t) and bool in set(map(type, values)):
                return None
            arrays.append(arr)
    except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError,
            OverflowError, TypeError, ValueError):
        return None
    _check_names(names, records, table)
    return _check_nested(pa.Table.from_arrays(arrays, names=names), records, table)


def _column(values: list[Any]) -> pa.Array:
    """``pa.array(values)``, quicker for a column of plain dicts (:func:`_plain_struct`)."""
    struct = _plain_struct(values) if type(values[0]) is dict else None
    return struct if struct is not None else pa.array(values)


def _plain_struct(values: list[Any]) -> pa.StructArray | None:
    """The struct array ``pa.array(values)`` infers, built field by field (about half the
    cost of inferring it row by row), where ``values`` are dicts that all have the first
    one's string keys and each field is a column of ints, floats, text, bools, bytes or
    nulls, or of such dicts again. None for anything else: ``pa.array`` then decides."""
    names = list(values[0])
    if not names or set(map(type, values)) != {dict} or set(map(len, values)) != {len(names)} \
            or not all(type(k) is str for k in names):
        return None
    children: list[pa.Array] = []
    try:
        for name in names:
            column = list(map(operator.itemgetter(name), values))
            if type(column[0]) is dict:
                child = _plain_struct(column)
                if child is None:
                    return None
            else:
                child = pa.array(column)
                t = child.type
                if not _plain_type(t) or (pa.types.is_floating(t)
                                          and bool in set(map(type, column))):
                    return None  # (what a struct's inference may type its own way)
            children.append(child)
    except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError,
            OverflowError, TypeError, ValueError):  # (KeyError: not the same keys)
        return None
    return pa.StructArray.from_arrays(children, names=names)


def _plain_type(t: pa.DataType) -> bool:
    return not isinstance(t, pa.BaseExtensionType) and (
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_string(t)
        or pa.types.is_boolean(t) or pa.types.is_binary(t) or pa.types.is_null(t))


def _types(records: Sequence[dict[str, Any]], name: str) -> set[type]:
    """The types of a field's values, gathered at C speed (no loop per record)."""
    try:
        return set(map(type, map(operator.itemgetter(name), records)))
    except KeyError:
        return {type(r.get(name)) for r in records}


def _check_names(names: list[str], records: Sequence[dict[str, Any]], table: str) -> None:
    """Field names must be able to be columns: non-empty, no NUL, not two that differ only
    by upper/lower case (a table's column names do not)."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.lower(), name)
        if name and "\x00" not in name and other == name:
            continue
        at = next((i for i, r in enumerate(records) if name in r), 0)
        why = (f"field names {other!r} and {name!r} differ only by upper/lower case, which "
               f"column names cannot; use one spelling" if other != name else
               f"field name {name!r} cannot be a column: field names must be non-empty and "
               f"contain no NUL character")
        raise NodeError(f"table {table!r}: record {at}: {why}", record=at)


def _keys(records: Sequence[dict[str, Any]], table: str) -> list[str]:
    first = records[0]
    if not isinstance(first, dict):
        raise NodeError(f"table {table!r}: record 0 is a {type(first).__name__}, not a dict: "
                        f"{_short(first)}; append dicts (or a list of dicts, a DataFrame)")
    keys = list(first)
    seen = set(keys)
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise NodeError(f"table {table!r}: record {i} is a {type(r).__name__}, not a "
                            f"dict: {_short(r)}", record=i)
        if r.keys() != first.keys():
            for k in r:
                if k not in seen:
                    seen.add(k)
                    keys.append(k)
    for k in keys:
        if not isinstance(k, str):
            at = next(i for i, r in enumerate(records) if k in r)
            raise NodeError(f"table {table!r}: record {at}: field name {k!r} is a "
                            f"{type(k).__name__}; field names must be strings", record=at)
    return keys


def _check_nested(data: pa.Table, records: Sequence[dict[str, Any]], table: str) -> pa.Table:
    """Nested columns must round-trip: no set, no key added as null by struct inference."""
    for i, f in enumerate(data.schema):
        t = f.type
        if not (pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_large_list(t)
                or pa.types.is_map(t)):
            continue
        name = f.name
        faithful = not _not_faithful(data.column(i))
        if faithful:
            # Arrow takes a set for a list; we refuse it (its order is not the user's).
            # The types of the column's values, gathered at C speed (no loop per record):
            try:
                kinds = set(map(type, map(operator.itemgetter(name), records)))
            except KeyError:
                kinds = {type(r.get(name)) for r in records}
            if any(issubclass(kind, (set, frozenset)) for kind in kinds):
                n = next(n for n, r in enumerate(records)
                         if isinstance(r.get(name), (set, frozenset)))
                raise _unstorable(table, name, n, records[n].get(name))
            continue
        values = [r.get(name) for r in records]
        data = data.set_column(i, pa.field(name, pa.string(), metadata=JSON_META),
                               pa.array(_json_values(values, name, table), pa.string()))
    return data


def _not_faithful(col: pa.ChunkedArray) -> bool:
    for chunk in col.chunks:
        arr: pa.Array = chunk
        stack = [arr]
        while stack:
            a = stack.pop()
            t = a.type
            if pa.types.is_struct(t):
                for j in range(t.num_fields):
                    key = t.field(j).name
                    if not key or "\x00" in key:
                        # DuckDB takes a struct with an empty key for a list, and ends a
                        # key at its first NUL ("a\x00b" comes back as "a")
                        return True
                    child = a.field(j)
                    if child.null_count:
                        return True
                    stack.append(child)
            elif pa.types.is_list(t) or pa.types.is_large_list(t):
                values = a.flatten()
                if values.null_count:
                    return True
                stack.append(values)
            elif pa.types.is_map(t):
                return True  # keep dict key order and types exactly: JSON
    return False


def _slow_path(records: Sequence[dict[str, Any]], keys: list[str], table: str) -> pa.Table:
    _check_names(keys, records, table)
    fields, arrays = [], []
    for k in keys:
        values = [r.get(k) for r in records]
        kind = _column_kind(values, k, table)
        if kind == "json":
            fields.append(pa.field(k, pa.string(), metadata=JSON_META))
            arrays.append(pa.array(_json_values(values, k, table), pa.string()))
            continue
        if kind == "text":
            values = [v if v is None or isinstance(v, str) else _text(v) for v in values]
        elif kind in ("bool", "int", "date", "time", "bytes"):
            values = [None if v is not None and v != v else v for v in values]  # (NaT)
        elif kind == "float":
            values = [None if v is None else float(v) for v in values]
        elif kind in ("datetime", "datetimetz"):
            values = [_as_datetime(v, kind == "datetimetz") for v in values]
        try:
            arr = pa.array(values, _ARROW[kind]) if kind in _ARROW else pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as exc:
            raise NodeError(f"table {table!r}: field {k!r} holds values that cannot be stored "
                            f"together ({exc}); convert them to one type") from exc
        fields.append(pa.field(k, arr.type))
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


_ARROW: dict[str, pa.DataType] = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(),
                                  "text": pa.string(), "datetime": pa.timestamp("us"),
                                  "datetimetz": pa.timestamp("us", tz="UTC")}


def _as_datetime(v: Any, aware: bool) -> dt.datetime | None:
    """A date or datetime as a datetime (a date: its midnight; naive ones are UTC when the
    column is ``aware``); ``pd.NaT`` is None."""
    if v is None or v != v:  # (NaT is not equal to itself)
        return None
    value: dt.datetime = v if isinstance(v, dt.datetime) else dt.datetime.combine(v, dt.time())
    if aware and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _column_kind(values: list[Any], field: str, table: str) -> str:
    kinds: set[str] = set()
    for n, v in enumerate(values):
        if v is None:
            continue
        kinds.add(_value_kind(v, field, n, table))
    if kinds == {"nat"}:
        return "datetime"
    kinds.discard("nat")
    if not kinds:
        return "null"
    if len(kinds) == 1:
        return kinds.pop()
    if "json" in kinds:
        return "json"
    if kinds == {"int", "float"}:
        return "float"
    if kinds <= _TIMES:
        return "datetimetz" if "datetimetz" in kinds else "datetime"
    return "text"


def _value_kind(v: Any, field: str, n: int, table: str) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int" if -(2**63) <= v < 2**63 else "text"
    if isinstance(v, (float, decimal.Decimal)):
        return "float"
    if isinstance(v, (str, uuid.UUID)):
        return "text"
    if isinstance(v, dt.datetime):
        if v != v:
            return "nat"  # pd.NaT: a missing datetime
        return "datetimetz" if v.tzinfo is not None else "datetime"
    if isinstance(v, dt.date):
        return "date"
    if isinstance(v, dt.time):
        return "time"
    if isinstance(v, (bytes, bytearray)):
        return "bytes"
    if isinstance(v, (dict, list, tuple)):
        return "json"
    raise _unstorable(table, field, n, v)


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"  # (as a text column shows a bool)
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    return str(v)


def _json_values(values: list[Any], field: str, table: str) -> list[str | None]:
    out: list[str | None] = []
    for n, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        try:
            _check_keys(v)
            out.append(json.dumps(v, default=_json_default, allow_nan=True))
        except (TypeError, ValueError) as exc:
            raise _unstorable(table, field, n, v, str(exc)) from exc
    return out


def _check_keys(v: Any) -> None:
    """JSON would quietly turn a non-string key into text: refuse it instead."""
    if isinstance(v, dict):
        for key, item in v.items():
            if not isinstance(key, str):
                raise TypeError(f"dict key {key!r} is a {type(key).__name__}, keys must be strings")
            _check_keys(item)
    elif isinstance(v, (list, tuple)):
        for item in v:
            _check_keys(item)


def _json_default(v: Any) -> Any:
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, uuid.UUID):
        return str(v)
    raise TypeError(f"a {type(v).__name__} ({_short(v)}) is not JSON")


def _unstorable(table: str, field: str, n: int, v: Any, why: str | None = None) -> NodeError:
    what = why or f"a {type(v).__name__} cannot be stored"
    return NodeError(
        f"table {table!r}: record {n}, field {field!r}: {what}: {_short(v)}; store text, "
        f"numbers, booleans, dates, datetimes, or dicts/lists of those (a set → list(value), "
        f"an object → a dict of its fields)", record=n,
    )


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def dataframe_to_arrow(frame: Any, table: str) -> pa.Table:
    """A pandas or polars DataFrame, or an Arrow table/batch, as an Arrow table."""
    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatch):
        return pa.Table.from_batches([frame])
    module = type(frame).__module__
    if module.startswith("polars"):
        return frame.to_arrow()  # type: ignore[no-any-return]
    if module.startswith("pandas"):
        try:
            return pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            records = frame.to_dict(orient="records")
            return records_to_arrow(records, table)
    raise NodeError(f"table {table!r}: cannot append a {type(frame).__name__}; append a dict, a "
                    f"list of dicts, a pandas or polars DataFrame, or an Arrow table")
