"""Resolving a node's parameter values when a run starts: references, conversion, defaults."""

from __future__ import annotations

import json
from typing import Any

from patterns.engine.secrets import SecretStore
from patterns.errors import ConfigError
from patterns.graph.model import MISSING, RUNTIME_DEFAULT, Node, ParameterDecl
from patterns.graph.parameters import (
    EXPECTED,
    convert_parameter,
    is_reference,
    parse_reference,
)


def resolve_parameters(node: Node, secrets: SecretStore,
                       overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every parameter of ``node`` with a value, converted to its declared type.

    A parameter whose default the node computes at run time and that has no value is left
    out: the node's own ``Parameter(...)`` call supplies it.
    """
    label = node.rel_file or node.id
    values: dict[str, Any] = {}
    given = dict(node.parameter_values)
    given.update(overrides or {})
    for decl in node.interface.parameters:
        if decl.name in given:
            raw = given[decl.name]
            if is_reference(raw):
                values[decl.name] = _converted_secret(decl, raw, label, secrets)
            else:
                values[decl.name] = convert_parameter(decl, raw, node=label)
        elif decl.default is RUNTIME_DEFAULT:
            continue
        elif decl.default is MISSING:
            raise ConfigError(
                f"node {label}: parameter {decl.name!r} needs a value: add "
                f"`parameter_values: {{{decl.name}: ...}}` to the function in graph.yml or "
                f"pass `--param {decl.name}=VALUE`"
            )
        else:
            values[decl.name] = decl.default
    return values


def _dereference(raw: str, name: str, node: str, secrets: SecretStore) -> Any:
    kind, ref = parse_reference(raw)
    key = f"connection.{ref}" if kind == "connection" else ref
    value = secrets.get(key)
    if value is None:
        what = "connection" if kind == "connection" else "secret"
        example = "'{\"api_key\": \"...\"}'" if kind == "connection" else "VALUE"
        raise ConfigError(
            f"node {node}: parameter {name!r} refers to {what} {ref!r}, which is not set; "
            f"set it with `patterns create secret {key} {example}`"
        )
    if kind == "secret":
        return value
    try:
        return json.loads(value)
    except ValueError:  # (the message never echoes the value: it is a secret)
        raise ConfigError(
            f"node {node}: parameter {name!r} refers to connection {ref!r}, which does not "
            f"hold a JSON object of credentials; set it again with `patterns create secret "
            f"{key} '{{\"api_key\": \"...\"}}'`"
        ) from None


def _converted_secret(decl: ParameterDecl, raw: str, node: str, secrets: SecretStore) -> Any:
    """The value of a ``${{ }}`` reference, converted to the parameter's type; an error
    names the secret but never shows its value."""
    value = _dereference(raw, decl.name, node, secrets)
    try:
        return convert_parameter(decl, value, node=node)
    except ConfigError:
        kind, ref = parse_reference(raw)
        key = f"connection.{ref}" if kind == "connection" else ref
        raise ConfigError(
            f"parameter '{decl.name}' of node {node} must be {EXPECTED[decl.type]}, but the "
            f"value of {kind} {ref!r} is not (not shown: it is a secret); set it again with "
            f"`patterns create secret {key} VALUE` or declare the parameter with another type"
        ) from None
