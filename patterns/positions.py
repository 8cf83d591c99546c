"""Where a stream has got to: the record the engine, the store and the SDK pass around.

A node's position on a table is part of its checkpoints (committed with the writes made from
the rows it delivered). A *pass* delivers the rows committed in ``(lo, hi]`` sorted by
``(order_by, patterns_id)``; ``(v, id)`` is the last row delivered. When a pass is done, the
next covers ``(hi, last id of the table]``. A new table version (``replace``, ``reset``)
starts the stream over. It lives here, beside :mod:`patterns.wire`, because both the SDK and
the store use it and neither may import the other.

Stored as JSON with a ``format`` number: format 1 (no ``format`` key) is what versions before
the typed record wrote; :meth:`StreamPosition.from_json` reads both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from patterns.errors import StoreError

#: The format :meth:`StreamPosition.to_json` writes.
FORMAT = 2

#: Keys a wire document may carry beside the position's own (the engine's "nothing to read").
_WIRE_ONLY = ("empty",)


@dataclass(frozen=True)
class StreamPosition:
    """One node's place in one table's stream."""

    #: The table version the position is on (another version starts the stream over).
    version: int | None = None
    #: The pass covers ids in ``(lo, hi]``.
    lo: str | None = None
    hi: str | None = None
    #: The order value and the id of the last row delivered (once ``started``).
    v: Any = None
    id: str | None = None
    done: bool = True
    started: bool = False
    #: The field the pass is sorted by (None: commit order) and its kind when it began.
    order_by: str | None = None
    kind: str | None = None
    #: ``as_stream(starting_value=...)``: only rows whose order value is at least this.
    floor: Any = None
    #: ``stream.seek(value)``: only rows whose order value is greater than this.
    gt: Any = None
    #: A seek asked by the node and not yet placed on a version: rows after this value.
    after: Any = None
    #: A table of an outside database (a storage; it has no ``patterns_id``): the position
    #: follows the row's place in the fetched table, and ``run`` is the run that read it.
    external: bool = False
    run: str | None = None

    # ------------------------------------------------------------------ moves
    def delivered(self, row_id: str, value: Any = None) -> StreamPosition:
        """The position once the row ``row_id`` (of order value ``value``) is delivered."""
        if self.order_by:
            value = value.isoformat() if hasattr(value, "isoformat") else value
            return replace(self, started=True, id=row_id, v=value)
        return replace(self, started=True, id=row_id)

    def finished(self) -> StreamPosition:
        return replace(self, done=True)

    @classmethod
    def seek(cls, value: Any) -> StreamPosition:
        """From the beginning, rows whose order value is strictly greater than ``value``."""
        return cls(version=None, after=value.isoformat() if hasattr(value, "isoformat")
                   else value)

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"format": FORMAT}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "external" and not value:
                continue
            if value is not None or f.name in ("version", "lo", "hi"):
                doc[f.name] = value
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> StreamPosition:
        """A position as stored by this version (format 2) or an older one (format 1)."""
        version = doc.get("format", 1)
        if not isinstance(version, int) or version > FORMAT:
            raise StoreError(f"a stream position was stored in format {version!r}, newer than "
                             f"this version of Patterns reads ({FORMAT}): upgrade Patterns")
        known = {f.name for f in fields(cls)}
        unknown = set(doc) - known - {"format", *_WIRE_ONLY}
        if unknown:
            raise StoreError(f"a stream position has fields this version of Patterns does not "
                             f"know ({', '.join(sorted(unknown))}): upgrade Patterns, or reset "
                             f"the stream with `patterns stream reset`")
        values = {k: v for k, v in doc.items() if k in known}
        for flag in ("done", "started"):
            if flag in values:
                values[flag] = bool(values[flag])
        return cls(**values)
