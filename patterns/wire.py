"""The data plane's small JSON messages: encoding shared by the SDK client and the engine.

Tables travel as Arrow streams; everything else (commands, run info, positions, errors) is
JSON. Dates and datetimes are tagged so they come back as what they were.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

ERROR_PREFIX = "PATTERNS-ERROR:"


def _default(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return {"__datetime__": v.isoformat()}
    if isinstance(v, dt.date):
        return {"__date__": v.isoformat()}
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    raise TypeError(f"{type(v).__name__} is not JSON")


def _hook(doc: dict[str, Any]) -> Any:
    if len(doc) == 1:
        if "__datetime__" in doc:
            return dt.datetime.fromisoformat(doc["__datetime__"])
        if "__date__" in doc:
            return dt.date.fromisoformat(doc["__date__"])
    return doc


def encode(doc: Any) -> bytes:
    return json.dumps(doc, default=_default, separators=(",", ":")).encode()


def decode(data: bytes | memoryview | Any) -> Any:
    return json.loads(bytes(data), object_hook=_hook)


def error_message(kind: str, message: str, record: int | None = None) -> str:
    return ERROR_PREFIX + json.dumps({"kind": kind, "message": message, "record": record})


def parse_error(text: str) -> tuple[str, str, int | None] | None:
    """(kind, message, record) from a data plane error text, if it carries one of ours."""
    start = text.find(ERROR_PREFIX)
    if start < 0:
        return None
    body = text[start + len(ERROR_PREFIX):]
    try:
        doc, _ = json.JSONDecoder().raw_decode(body)
    except ValueError:
        return None
    record = doc.get("record")
    return str(doc.get("kind")), str(doc.get("message")), record if isinstance(record, int) else None
