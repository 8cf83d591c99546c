"""Leases with expiry and fencing tokens: which engine may do a thing, for how long.

A lease is a named right (``node:load``, ``scheduler``) held by one holder (an engine's id)
until it expires, unless renewed. Each time a lease changes hands its **fencing token**
grows, so a holder that paused past its expiry (and lost the lease to another) is found out:
its token is no longer the lease's, and :meth:`Leases.holds` says so inside the transaction
that would act on it. Times are the server's clock (``now()`` of the transaction,
``clock_timestamp()`` for expiry), so engines on machines with different clocks agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from patterns.store.interface import Lease
from patterns.store.postgres.migrations import META

if TYPE_CHECKING:
    from patterns.store.postgres.tables import Cursor


class Leases:
    """The ``leases`` repository of a PostgreSQL view."""

    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    def acquire(self, name: str, holder: str, seconds: float) -> Lease | None:
        """The lease, taken (or renewed, for its holder) for ``seconds``; None while another
        holder's lease on it has not expired. Taking it over from an expired holder (or
        anew) gives a new, greater fencing token."""
        row = self.cur.execute(
            f"INSERT INTO {META}.leases AS l (name, holder, token, expires_at) VALUES "
            f"(%s, %s, 1, clock_timestamp() + make_interval(secs => %s)) "
            f"ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, "
            f"token = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > "
            f"clock_timestamp() THEN l.token ELSE l.token + 1 END, "
            f"expires_at = EXCLUDED.expires_at "
            f"WHERE l.holder = EXCLUDED.holder OR l.expires_at <= clock_timestamp() "
            f"RETURNING name, holder, token, expires_at", [name, holder, seconds]).fetchone()
        return Lease(*row) if row else None

    def renew(self, lease: Lease, seconds: float) -> Lease | None:
        """The lease for ``seconds`` more, if its holder still holds it (same token, not
        expired); None when it was lost."""
        row = self.cur.execute(
            f"UPDATE {META}.leases SET expires_at = clock_timestamp() + "
            f"make_interval(secs => %s) WHERE name = %s AND holder = %s AND token = %s "
            f"AND expires_at > clock_timestamp() RETURNING name, holder, token, expires_at",
            [seconds, lease.name, lease.holder, lease.token]).fetchone()
        return Lease(*row) if row else None

    def release(self, lease: Lease) -> bool:
        """Give the lease up (it expires now); False when it was no longer held."""
        self.cur.execute(
            f"UPDATE {META}.leases SET expires_at = clock_timestamp() WHERE name = %s AND "
            f"holder = %s AND token = %s AND expires_at > clock_timestamp()",
            [lease.name, lease.holder, lease.token])
        return bool(self.cur.rowcount)

    def holds(self, lease: Lease) -> bool:
        """Whether ``lease`` is still held (the fencing check before acting on it); the row
        is locked until the transaction ends, so it cannot change hands meanwhile."""
        row = self.cur.execute(
            f"SELECT 1 FROM {META}.leases WHERE name = %s AND holder = %s AND token = %s "
            f"AND expires_at > clock_timestamp() FOR UPDATE",
            [lease.name, lease.holder, lease.token]).fetchone()
        return row is not None

    def get(self, name: str) -> Lease | None:
        row = self.cur.execute(f"SELECT name, holder, token, expires_at FROM {META}.leases "
                               f"WHERE name = %s", [name]).fetchone()
        return Lease(*row) if row else None

    def live(self, prefix: str = "") -> list[Lease]:
        rows = self.cur.execute(
            f"SELECT name, holder, token, expires_at FROM {META}.leases WHERE "
            f"left(name, length(%s)) = %s AND expires_at > clock_timestamp() ORDER BY name",
            [prefix, prefix]).fetchall()
        return [Lease(*row) for row in rows]
