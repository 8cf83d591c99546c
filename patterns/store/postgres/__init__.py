"""The PostgreSQL store (``postgresql://user@host:port/db``): see :mod:`.store`.

Modules by subject: :mod:`.connection` (connections, errors), :mod:`.migrations` (the
metadata schema), :mod:`.tables` (versions, views, schema evolution), :mod:`.appends`
(``COPY`` from Arrow, upserts), :mod:`.sql_writes` (SQL nodes' statements), :mod:`.repair`
(delete rows, alter a column), :mod:`.reads` (Arrow out), :mod:`.view` (a view: the portable
repositories over a psycopg cursor), :mod:`.store` (the store and its views).
"""

from __future__ import annotations

from patterns.store.postgres.store import PostgresStore
from patterns.store.postgres.view import PgView

__all__ = ["PgView", "PostgresStore"]
