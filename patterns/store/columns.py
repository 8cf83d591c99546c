"""Column types: how Arrow types map to stored types, and how a column widens.

A table's schema is inferred from the first write and evolves: a new field adds a nullable
column. **Types are a contract**: a column widens only where no value changes meaning
(``int → float``, ``date → timestamp``); every other mix is a value that does not fit, which
:mod:`patterns.store.conform` refuses (or keeps aside, as the table's contract says). A column
never turns into text. ``bool`` is not a number here (``True`` in an int column, or ``1`` in a
bool column, does not fit). Nested values (structs, lists, maps) are stored as JSON. A column
seen only with nulls so far has the kind ``null``; its first real value decides its type.

Kinds are backend-neutral names; each store maps them to its own SQL types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from patterns.errors import NodeError

#: Every kind a column can have.
KINDS = ("null", "bool", "int", "float", "text", "date", "timestamp", "timestamptz", "time",
         "json", "bytes")

#: Spellings accepted in ``schema=`` / ``schema_hints=`` (Common Model names, SQL names).
_HINT_ALIASES: dict[str, str] = {
    "boolean": "bool", "bool": "bool",
    "integer": "int", "int": "int", "bigint": "int", "int64": "int", "smallint": "int",
    "float": "float", "double": "float", "decimal": "float", "numeric": "float", "real": "float",
    "text": "text", "string": "text", "str": "text", "varchar": "text", "unicode": "text",
    "longtext": "text",
    "date": "date",
    "datetime": "timestamptz", "timestamptz": "timestamptz",
    "timestamp": "timestamp", "naivedatetime": "timestamp",
    "time": "time",
    "json": "json", "jsonb": "json", "dict": "json", "list": "json", "object": "json",
    "array": "json",
    "bytes": "bytes", "binary": "bytes", "blob": "bytes",
}

#: Widenings a column may take (current kind → wider kind): no value changes meaning.
_WIDENINGS = {("int", "float"), ("date", "timestamp"), ("date", "timestamptz")}

#: Values of a kind a column stores as they are, by a cast that loses nothing (column kind →
#: kinds of values it takes): a timestamp with and without a time zone are both taken as UTC,
#: a JSON column takes any value, a text column any scalar (as its text).
_TAKES: dict[str, frozenset[str]] = {
    "float": frozenset({"int"}),
    "timestamp": frozenset({"date", "timestamptz"}),
    "timestamptz": frozenset({"date", "timestamp"}),
    "json": frozenset(KINDS) - {"bytes"},
    "text": frozenset({"bool", "int", "float", "date", "timestamp", "timestamptz", "time",
                       "json"}),
}

#: Kinds whose columns take text that spells one of their values (ISO-8601 for dates and
#: timestamps, ``true``/``false``, numbers): the text is parsed, other text does not fit.
PARSED_FROM_TEXT = ("bool", "int", "float", "date", "timestamp", "timestamptz", "time")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind}


def kind_from_hint(hint: str, *, field: str, table: str) -> str:
    # (a size or precision, as in Decimal(12,2) or Text(255), does not change the kind)
    kind = _HINT_ALIASES.get(str(hint).split("(")[0].strip().lower())
    if kind is None:
        valid = ", ".join(sorted({k for k in _HINT_ALIASES}))
        raise NodeError(
            f"table {table!r}: unknown type {hint!r} for field {field!r} in its schema; "
            f"use one of: {valid}"
        )
    return kind


def kind_of_arrow(t: pa.DataType, field: pa.Field | None = None) -> str:
    """The kind a column of Arrow type ``t`` is stored as."""
    if field is not None and field.metadata and field.metadata.get(b"patterns.json") == b"1":
        return "json"
    if pa.types.is_null(t):
        return "null"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz is not None else "timestamp"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "bytes"
    if pa.types.is_dictionary(t):
        return kind_of_arrow(t.value_type)
    if (pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_large_list(t)
            or pa.types.is_map(t) or pa.types.is_fixed_size_list(t)):
        return "json"
    raise NodeError(f"values of Arrow type {t} cannot be stored; convert them to text first")


def widen(current: str, incoming: str, *, declared: bool = False) -> str | None:
    """The kind a column of kind ``current`` takes to also hold ``incoming`` values, or None
    when they do not fit as they are (text may still parse: :data:`PARSED_FROM_TEXT`). A
    ``declared`` column (``schema=``, ``schema_hints=``) keeps its kind: it never widens."""
    if current == incoming or incoming == "null":
        return current
    if current == "null":
        return incoming
    if not declared and (current, incoming) in _WIDENINGS:
        return incoming
    if incoming in _TAKES.get(current, ()):
        return current
    return None


def is_nan_into_int(current: str, incoming_type: pa.DataType, values: Any) -> bool:
    """True when float values arriving for an int column contain NaN."""
    if current != "int" or not pa.types.is_floating(incoming_type):
        return False
    import pyarrow.compute as pc

    return bool(pc.any(pc.is_nan(values)).as_py())


_DUCKDB_KINDS = {
    "BOOLEAN": "bool",
    "TINYINT": "int", "SMALLINT": "int", "INTEGER": "int", "BIGINT": "int", "HUGEINT": "int",
    "UTINYINT": "int", "USMALLINT": "int", "UINTEGER": "int", "UBIGINT": "int",
    "UHUGEINT": "int",
    "FLOAT": "float", "DOUBLE": "float",
    "VARCHAR": "text", "UUID": "text", "INTERVAL": "text", "BIT": "text",
    "TIME WITH TIME ZONE": "text",
    "DATE": "date",
    "TIMESTAMP": "timestamp", "TIMESTAMP_S": "timestamp", "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "TIME": "time", "JSON": "json", "BLOB": "bytes", '"NULL"': "null", "NULL": "null",
}


def kind_of_duckdb(type_name: str) -> str:
    """The kind a column of DuckDB type ``type_name`` (as DESCRIBE spells it) is stored as:
    a query's HUGEINT sum is an int, a DECIMAL a float, lists and structs JSON."""
    t = type_name.strip().upper()
    if t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION")):
        return "json"
    if t.startswith("DECIMAL"):
        return "float"
    if t.startswith(("ENUM", "VARCHAR")):
        return "text"
    return _DUCKDB_KINDS.get(t, "text")
