"""graph.yml's type rules of each store (its ``contract:`` and ``schema:``), and a named
schema a node's ``init(schema="Name")`` asks for: read from the app and checked before
any write is staged against them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patterns.errors import NodeError
from patterns.store.model import StoreRules


def store_rules(app: Any) -> dict[str, StoreRules]:
    """graph.yml's rules of each store: its ``contract:`` and ``schema:`` (a mapping of field
    to type, or ``{fields: [{name, type}]}``; or the name of an entry of the top-level
    ``schemas:``, or of a YAML/JSON schema file in the app)."""
    rules: dict[str, StoreRules] = {}
    for decl in app.stores:
        if isinstance(decl.schema, str):  # a named schema: its fields and unique_on
            from patterns.graph.schemas import find_schema

            named = find_schema(app.root, app.schemas, decl.schema)
            check_types(named.fields, named.file or "graph.yml", named.name)
            rules[decl.name] = StoreRules(contract=decl.contract, schema=dict(named.fields),
                                          unique_on=named.unique_on, schema_name=named.name)
            continue
        declared = schema_fields(decl.schema)
        if decl.contract or declared:
            rules[decl.name] = StoreRules(contract=decl.contract, schema=declared)
    return rules


def named_schema(app: Any, store: str, options: Mapping[str, Any]) -> Mapping[str, Any]:
    """``init(schema="Name")``: the named schema's fields (and unique_on, unless given)."""
    name = options.get("schema")
    if not isinstance(name, str):
        return options
    from patterns.errors import ConfigError
    from patterns.graph.schemas import find_schema

    try:
        if app is None:
            raise ConfigError("named schemas need the app's graph.yml")
        named = find_schema(app.root, app.schemas, name)
        check_types(named.fields, named.file or "graph.yml", named.name)
    except ConfigError as exc:
        raise NodeError(f"table {store!r}: {exc}") from None
    return {**options, "schema": dict(named.fields), "schema_name": named.name,
            "unique_on": options.get("unique_on") or list(named.unique_on or ()) or None}


def check_types(fields: Mapping[str, str], file: str, schema: str) -> None:
    from patterns.errors import ConfigError
    from patterns.store.columns import kind_from_hint

    for name, hint in fields.items():
        try:
            kind_from_hint(hint, field=name, table=schema)
        except NodeError as exc:
            raise ConfigError(f"{file}: schema {schema}: {str(exc).split(': ', 1)[1]}") from None


def schema_fields(schema: Any) -> dict[str, str] | None:
    if isinstance(schema, dict) and isinstance(schema.get("fields"), list):
        schema = {str(f["name"]): str(f.get("type") or f.get("field_type") or "text")
                  for f in schema["fields"] if isinstance(f, dict) and "name" in f}
    if isinstance(schema, dict) and schema:
        return {str(k): str(v) for k, v in schema.items()}
    return None
