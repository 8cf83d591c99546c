"""Connections to a PostgreSQL store, and PostgreSQL's errors as the project's own.

Every view and transaction takes a connection of its own from a small pool (idle connections
are kept for reuse, at most :data:`POOL_IDLE`). Connections talk UTC (``TimeZone``), so
naive timestamps are read and written as UTC, as in the DuckDB store.

A URL is never shown with its password: :func:`masked` replaces it with ``***``.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from patterns.errors import DiskFullError, NodeError, PatternsError, StoreBusyError, StoreError

if TYPE_CHECKING:
    import psycopg

#: Idle connections a store keeps for its next views.
POOL_IDLE = 4
#: Seconds to wait for the server to answer a new connection.
CONNECT_TIMEOUT = 10


def masked(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "(the user's default database)"


def open_error(url: str, exc: BaseException) -> StoreError:
    """A one-line error for a connection that could not be made: what, and what to do."""
    text = " ".join(str(exc).split())
    where = masked(url)
    lower = text.lower()
    if "password authentication failed" in lower or "no password supplied" in lower \
            or "authentication failed" in lower:
        return StoreError(f"the PostgreSQL store {where} refused the user's credentials: "
                          f"check the user and password in the URL (or PGPASSWORD)")
    if "does not exist" in lower and "database" in lower:
        return StoreError(f"the PostgreSQL store {where}: the database "
                          f"{database_of(url)!r} does not exist; create it "
                          f"(createdb {database_of(url)}) or name another in the URL")
    if "role" in lower and "does not exist" in lower:
        return StoreError(f"the PostgreSQL store {where}: the user in the URL does not exist "
                          f"on the server; create it (CREATE ROLE ... LOGIN) or name another")
    if "invalid dsn" in lower or "invalid connection option" in lower \
            or "invalid integer value" in lower or ("missing" in lower and "=" in lower):
        return StoreError(f"{where} is not a valid PostgreSQL URL ({text}); write it as "
                          f"postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
    return StoreError(f"cannot reach the PostgreSQL store {where} ({text}); check that the "
                      f"server runs and the host and port in the URL are right")


def connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """A new connection (in a transaction until committed), or a clear :class:`StoreError`."""
    import psycopg

    if not url.startswith(("postgresql://", "postgres://")):
        raise StoreError(f"{masked(url)} is not a PostgreSQL URL; write it as "
                         f"postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
    try:
        con = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT,
                              options="-c TimeZone=UTC -c DateStyle=ISO,YMD",
                              application_name="patterns")
    except (psycopg.Error, ValueError) as exc:
        raise open_error(url, exc) from None
    return con


class Pool:
    """Connections to one store: taken for a view or a transaction, given back after."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._idle: list[psycopg.Connection[tuple[object, ...]]] = []
        self._lock = threading.Lock()
        self._closed = False

    def take(self) -> psycopg.Connection[tuple[object, ...]]:
        with self._lock:
            while self._idle:
                con = self._idle.pop()
                if not con.closed and not con.broken:
                    return con
        return connect(self.url)

    def give_back(self, con: psycopg.Connection[tuple[object, ...]]) -> None:
        """Return ``con`` (rolled back if it is still in a transaction)."""
        import psycopg

        if con.closed or con.broken:
            return
        if con.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                con.rollback()
        if con.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            con.close()  # (interrupted mid-statement: not fit to be used again)
            return
        with self._lock:
            if not self._closed and len(self._idle) < POOL_IDLE and not con.broken:
                self._idle.append(con)
                return
        con.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for con in idle:
            with contextlib.suppress(Exception):
                con.close()


def mapped(exc: BaseException, url: str) -> PatternsError | None:
    """The project's error for a PostgreSQL error that is not the caller's to explain (None:
    let the caller say what it means). The transaction it happened in was rolled back."""
    import psycopg
    import psycopg.errors as pe

    if isinstance(exc, PatternsError) or not isinstance(exc, psycopg.Error):
        return None
    text = " ".join(str(exc).split())
    where = masked(url)
    if isinstance(exc, pe.DiskFull):
        return DiskFullError(f"the PostgreSQL store {where} is out of disk ({text}): nothing "
                             f"of this write was stored; free some space and try again")
    if isinstance(exc, (pe.SerializationFailure, pe.DeadlockDetected, pe.LockNotAvailable)):
        return StoreBusyError(f"the PostgreSQL store {where} was busy ({text}); nothing of "
                              f"this write was stored: try again")
    if isinstance(exc, pe.InsufficientPrivilege):
        return StoreError(f"the PostgreSQL store {where}: the user lacks a privilege ({text}); "
                          f"grant it (GRANT ... TO the URL's user) or use a database it owns")
    if isinstance(exc, psycopg.DataError):
        return NodeError(f"a value does not fit its column ({text}); nothing was written")
    if isinstance(exc, psycopg.OperationalError):
        return StoreError(f"the PostgreSQL store {where} failed ({text}); nothing of this "
                          f"write was stored; check that the server runs, then try again")
    return None
