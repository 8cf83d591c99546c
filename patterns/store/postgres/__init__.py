"""The PostgreSQL store (``postgresql://user@host:port/db``): see :mod:`.store`.

Modules by subject: :mod:`.connection` (connections, errors), :mod:`.migrations` (the
metadata schema), :mod:`.tables` (versions, views, schema evolution), :mod:`.appends`
(``COPY`` from Arrow, upserts), :mod:`.sql_writes` (SQL nodes' statements), :mod:`.repair`
(delete rows, alter a column), :mod:`.reads` (Arrow out), :mod:`.repositories` (platform
metadata), :mod:`.store` (the store and its views).
"""

from __future__ import annotations

from patterns.store.postgres.store import PgView, PostgresStore

__all__ = ["PgView", "PostgresStore"]
