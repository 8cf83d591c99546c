"""Parameter values: converting what a user wrote to the declared type, and ``${{ }}`` references.

Shared by the loader (which checks literal values before anything runs) and the engine (which
converts the final values, after resolving secrets and connections, when a run starts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any, Final, Literal

from patterns.errors import ConfigError
from patterns.graph.model import ParameterDecl

_REFERENCE: Final = re.compile(r"^\$\{\{\s*(connection\.)?([A-Za-z_][A-Za-z0-9_\-]*)\s*\}\}$")
_TRUE: Final = frozenset({"true", "yes", "1"})
_FALSE: Final = frozenset({"false", "no", "0"})

EXPECTED: Final[dict[str, str]] = {
    "str": "a string",
    "int": "a whole number (e.g. 100)",
    "float": "a number (e.g. 0.5)",
    "bool": "true or false (also yes/no, 1/0)",
    "datetime": "an ISO 8601 date or date-time (e.g. 2000-01-01 or 2000-01-01T12:00:00)",
    "date": "an ISO 8601 date (e.g. 2000-01-01)",
    "list": "a list, a JSON array or comma-separated values (e.g. a,b,c)",
    "connection": "a mapping of credentials or a JSON object",
}


class _Invalid(Exception):
    """Raised by a converter when a value does not fit the type."""


def is_reference(raw: Any) -> bool:
    """True when ``raw`` is ``${{ name }}`` (a secret) or ``${{ connection.name }}``."""
    return isinstance(raw, str) and _REFERENCE.match(raw.strip()) is not None


def looks_like_reference(raw: Any) -> bool:
    """True when ``raw`` tries to be a reference (contains ``${{``), well-formed or not."""
    return isinstance(raw, str) and "${{" in raw


def parse_reference(raw: str) -> tuple[Literal["secret", "connection"], str]:
    """Split a reference into its kind and name; ConfigError when it is malformed."""
    match = _REFERENCE.match(raw.strip()) if isinstance(raw, str) else None
    if match is None:
        raise ConfigError(
            f"bad reference {raw!r}: write `${{{{ name }}}}` for a secret "
            f"or `${{{{ connection.name }}}}` for a connection"
        )
    return ("connection" if match.group(1) else "secret"), match.group(2)


def convert_parameter(decl: ParameterDecl, raw: Any, *, node: str) -> Any:
    """Convert ``raw`` to the type ``decl`` declares. ``None`` stays ``None``.

    Raises ConfigError naming the parameter, the node, the value, the expected type and
    where a value can be given.
    """
    if raw is None:
        return None
    converter = _CONVERTERS.get(decl.type)
    if converter is None:
        raise ConfigError(
            f"parameter '{decl.name}' of node {node} has unknown type '{decl.type}': "
            f"use one of {', '.join(EXPECTED)}"
        )
    try:
        return converter(raw)
    except (_Invalid, ValueError, TypeError):
        raise ConfigError(
            f"parameter '{decl.name}' of node {node} must be {EXPECTED[decl.type]}, "
            f"got {raw!r}: give a value in `parameter_values` in graph.yml "
            f"or with --param {decl.name}=VALUE"
        ) from None


def _to_str(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return str(raw)
    if isinstance(raw, date):
        return raw.isoformat()
    raise _Invalid


def _to_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise _Invalid
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        return int(raw.strip())
    raise _Invalid


def _to_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise _Invalid
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        return float(raw.strip())
    raise _Invalid


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _Invalid


def _to_datetime(raw: Any) -> datetime:
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, date):
        return datetime.combine(raw, time())
    if isinstance(raw, str):
        return datetime.fromisoformat(raw.strip())
    raise _Invalid


def _to_date(raw: Any) -> date:
    if isinstance(raw, datetime):
        if raw.time() != time():
            raise _Invalid
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        return date.fromisoformat(raw.strip())
    raise _Invalid


def _to_list(raw: Any) -> list[Any]:
    if isinstance(raw, list | tuple):
        return list(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith(("[", "{")):
            value = json.loads(text)
            if not isinstance(value, list):
                raise _Invalid
            return value
        return [item.strip() for item in text.split(",")] if text else []
    raise _Invalid


def _to_connection(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return dict(raw)
    if isinstance(raw, str):
        value = json.loads(raw)
        if isinstance(value, dict):
            return value
    raise _Invalid


_CONVERTERS: Final[dict[str, Callable[[Any], Any]]] = {
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "datetime": _to_datetime,
    "date": _to_date,
    "list": _to_list,
    "connection": _to_connection,
}
