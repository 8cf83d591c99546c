"""The store: an app's tables, their versions and the platform's metadata, behind one
interface (:mod:`patterns.store.interface`) with one module per backend.

:func:`open_store` is the one way in from a path or a URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from patterns.store.interface import Store

#: The URL schemes :func:`open_store` knows, for messages.
SCHEMES = ("duckdb://PATH", "postgresql://USER@HOST:PORT/DB")


def open_store(url_or_path: str | Path, *, read_only: bool = False) -> Store:
    """The store at ``url_or_path``: a DuckDB file (a path, or ``duckdb://PATH``) or a
    PostgreSQL database (``postgresql://...``, also ``postgres://``). An unknown scheme, or
    PostgreSQL without psycopg installed, is a one-line :class:`StoreError` saying what to do.
    """
    from patterns.errors import StoreError

    text = str(url_or_path)
    scheme, sep, rest = text.partition("://")
    if not sep or isinstance(url_or_path, Path):
        scheme, rest = "duckdb", text
    scheme = scheme.lower()
    if scheme == "duckdb":
        from patterns.store.duckdb import DuckDBStore

        return DuckDBStore(Path(rest), read_only=read_only)
    if scheme in ("postgresql", "postgres"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StoreError(f"the store '{_shown(text)}' is a PostgreSQL database, and psycopg "
                             f"is not installed: pip install 'psycopg[binary]'") from None
        try:
            from patterns.store.postgres import PostgresStore
        except ImportError:
            raise StoreError(f"the store '{_shown(text)}' is a PostgreSQL database, which this "
                             f"installation of Patterns cannot open yet: use a DuckDB store "
                             f"(a file path)") from None
        store: Store = PostgresStore(text, read_only=read_only)
        return store
    raise StoreError(f"unknown store '{_shown(text)}': give a file path, or a URL "
                     f"{' or '.join(SCHEMES)}")


def _shown(url: str) -> str:
    """``url`` without its password, for messages."""
    import re

    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:****@", url)
