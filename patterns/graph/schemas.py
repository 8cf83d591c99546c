"""Named schemas: graph.yml's ``schemas:`` and the schema files they name.

The original app format declares schemas once and names them from stores (``schema: Name``)
and node code (``Table("t", "w", schema="Name")``, ``table.init(schema="Name")``). A schema
file is Common Model YAML::

    name: Customer
    description: People who bought something
    unique_on: id                  # or a list of fields: the table's upsert key
    field_roles:
      created_ordering: created_at
      immutable: true
    fields:
      id: Text                     # a type, or a mapping with type and description
      joined: {type: Date, description: First purchase}

``schemas:`` lists them as ``- schema_file: schemas/customer.yml`` (the name is the file's
``name``), ``- {name: Customer, schema_file: ...}``, inline entries with ``name`` and
``fields``, or a mapping of name to either. A ``schema:`` that names no entry may also be the
path of a schema file in the app.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patterns.errors import ConfigError


@dataclass(frozen=True)
class NamedSchema:
    name: str
    fields: Mapping[str, str]  # field → type as written (Text, Decimal(12,2), ...)
    description: str | None = None
    unique_on: tuple[str, ...] | None = None
    field_roles: Mapping[str, Any] = field(default_factory=dict)
    field_descriptions: Mapping[str, str] = field(default_factory=dict)
    file: str | None = None  # where it was declared, relative to the app

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "fields": dict(self.fields), "unique_on": list(self.unique_on or ()),
                "field_roles": dict(self.field_roles),
                "field_descriptions": dict(self.field_descriptions)}


def named_schemas(root: Path, raw: Any) -> dict[str, NamedSchema]:
    """Every entry of ``schemas:`` by name; a ConfigError names the entry or file that
    cannot be read and says how to fix it."""
    entries: list[tuple[str | None, Any]] = []
    if isinstance(raw, Mapping):
        entries = [(str(k), v) for k, v in raw.items()]
    elif isinstance(raw, list):
        entries = [(None, v) for v in raw]
    elif raw is not None:
        raise ConfigError("graph.yml: `schemas:` must be a list of entries like "
                          "`- schema_file: schemas/customer.yml`")
    found: dict[str, NamedSchema] = {}
    for name, entry in entries:
        schema = _entry(root, name, entry)
        found[schema.name] = schema
    return found


def find_schema(root: Path, raw: Any, name: str) -> NamedSchema:
    """The schema called ``name``: an entry of ``schemas:``, or a schema file of the app."""
    schemas = named_schemas(root, raw)
    if name in schemas:
        return schemas[name]
    path = (root / name).resolve()
    if path.suffix in (".yml", ".yaml", ".json") and path.is_file() \
            and path.is_relative_to(root.resolve()):
        return schema_from_file(root, name)
    known = ", ".join(sorted(schemas)) or "none"
    raise ConfigError(f"schema {name!r} is not declared (declared schemas: {known}); add "
                      f"`- schema_file: schemas/{name.lower()}.yml` under `schemas:` in "
                      f"graph.yml, or pass the fields as a dict")


def _entry(root: Path, name: str | None, entry: Any) -> NamedSchema:
    if isinstance(entry, str):
        entry = {"schema_file": entry}
    if not isinstance(entry, Mapping):
        raise ConfigError(f"graph.yml: schemas entry {entry!r} is not a mapping; write "
                          f"`- schema_file: schemas/customer.yml`")
    file = entry.get("schema_file")
    if file is not None:
        schema = schema_from_file(root, str(file))
        wanted = entry.get("name") or name
        if wanted and wanted != schema.name:
            schema = NamedSchema(str(wanted), schema.fields, schema.description,
                                 schema.unique_on, schema.field_roles,
                                 schema.field_descriptions, schema.file)
        return schema
    doc = dict(entry)
    if name and "name" not in doc:
        doc["name"] = name
    return parse_schema(doc, "graph.yml")


def schema_from_file(root: Path, rel: str) -> NamedSchema:
    import yaml

    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ConfigError(f"graph.yml: schema_file {rel!r} is outside the app folder")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"graph.yml: schema_file {rel!r} does not exist; create it or fix "
                          f"the path (relative to the app folder)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{rel}: cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{rel}{at}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{rel}: a schema file is a mapping with `name` and `fields`")
    if "name" not in doc:
        doc = {**doc, "name": Path(rel).stem}
    return parse_schema(doc, rel)


def parse_schema(doc: Mapping[str, Any], file: str) -> NamedSchema:
    name = str(doc.get("name") or "")
    raw_fields = doc.get("fields")
    if isinstance(raw_fields, list):  # [{name, type}] as some exports write them
        raw_fields = {str(f.get("name")): f for f in raw_fields if isinstance(f, Mapping)}
    if not name or not isinstance(raw_fields, Mapping) or not raw_fields:
        raise ConfigError(f"{file}: schema {name or '(no name)'} needs a `name` and `fields` "
                          f"(a mapping of field name to type, e.g. `id: Integer`)")
    fields: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    for fname, spec in raw_fields.items():
        ftype = spec
        if isinstance(spec, Mapping):
            ftype = spec.get("type") or spec.get("field_type")
            if spec.get("description"):
                descriptions[str(fname)] = str(spec["description"])
        if not isinstance(ftype, str):
            raise ConfigError(f"{file}: field {fname!r} of schema {name} has no type; write "
                              f"`{fname}: Text` (or Integer, Float, Decimal, Boolean, Date, "
                              f"DateTime, Time, Json, LongText)")
        fields[str(fname)] = ftype
    unique = doc.get("unique_on")
    unique_on = (unique,) if isinstance(unique, str) else tuple(unique) if unique else None
    for key in unique_on or ():
        if key not in fields:
            raise ConfigError(f"{file}: unique_on field {key!r} of schema {name} is not one "
                              f"of its fields ({', '.join(fields)})")
    roles = doc.get("field_roles")
    return NamedSchema(name=name, fields=fields, description=doc.get("description"),
                       unique_on=unique_on,
                       field_roles=dict(roles) if isinstance(roles, Mapping) else {},
                       field_descriptions=descriptions, file=file)
