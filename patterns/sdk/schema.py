"""What ``Table.schema`` and ``Table.get_active_version()`` return, shaped like the original
API's objects (a Common Model ``Schema`` with ``fields`` and ``field_names()``; a
``TableVersion``), while a schema still reads as the dict it was before."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Column kinds as Common Model field types.
_FIELD_TYPES = {"int": "Integer", "float": "Float", "text": "Text", "bool": "Boolean",
                "date": "Date", "timestamp": "DateTime", "timestamptz": "DateTime",
                "time": "Time", "json": "Json", "bytes": "Binary", "null": "Text"}


@dataclass(frozen=True)
class Field:
    name: str
    field_type: str  # a Common Model type: Text, Integer, Decimal(12,2), DateTime, ...
    kind: str  # how it is stored (int, float, text, timestamptz, ...)
    description: str | None = None

    @property
    def type(self) -> str:
        return self.field_type


class Schema(dict[str, Any]):
    """A table's schema. As a dict: ``version``, ``columns`` (``[{name, kind}]``),
    ``unique_on``. As the original's ``Schema``: ``name``, ``fields``, ``field_names()``,
    ``unique_on``, ``field(name)``."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        super().__init__(doc)
        declared = doc.get("declared") or {}
        self.name: str | None = doc.get("schema_name")
        self.unique_on: list[str] = list(doc.get("unique_on") or [])
        self.fields: list[Field] = [
            Field(c["name"], str(declared.get(c["name"]) or _FIELD_TYPES.get(c["kind"], "Text")),
                  c["kind"])
            for c in doc.get("columns") or []]

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True)
class TableVersion:
    """One version of a table: ``reset()`` and ``replace()`` start a new one."""

    table_name: str
    version: int
    sql_name: str
    record_count: int
    exists: bool
    schema: Schema | None

    @property
    def name(self) -> str:
        return self.sql_name

    @property
    def storage(self) -> str:
        return "default"

    def __str__(self) -> str:
        return self.sql_name
