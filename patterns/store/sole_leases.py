"""The leases of a store only one process may write (DuckDB): every lease is granted.

One process holds such a store (its file lock says so), so nothing can run a node beside
its engine and nothing is fenced off: ``acquire`` and ``renew`` always succeed, ``holds`` is
always true, and no lease outlives the process (``live`` is empty, so the runs left
``running`` when an engine opens the store were its dead predecessor's).
"""

from __future__ import annotations

import datetime as dt

from patterns.store.interface import Lease

_NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)


class SoleLeases:
    """The ``leases`` repository of a store for one process."""

    def acquire(self, name: str, holder: str, seconds: float) -> Lease | None:
        return Lease(name, holder, 1, _NEVER)

    def renew(self, lease: Lease, seconds: float) -> Lease | None:
        return lease

    def release(self, lease: Lease) -> bool:
        return True

    def holds(self, lease: Lease) -> bool:
        return True

    def get(self, name: str) -> Lease | None:
        return None

    def live(self, prefix: str = "") -> list[Lease]:
        return []
