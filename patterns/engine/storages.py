"""External storages: tables that live in an outside database, which nodes read and never write.

graph.yml names the database once under ``storages:`` and each of its tables as a store
with ``storage: NAME`` (and ``storage_table: schema.table`` when the name differs)::

    storages:
      - name: warehouse
        connection: ${{ connection.warehouse }}   # the default when left out
    stores:
      - table: customers
        storage: warehouse

The connection is a PostgreSQL URL (``postgresql://user:pass@host/db``), a DuckDB file
(``duckdb:///path/file.duckdb`` or a path ending in ``.duckdb``) or a SQLite file
(``sqlite:///path/file.db`` or a path ending in ``.sqlite``, ``.sqlite3``, ``.db``),
written literally or kept as a secret (``${{ name }}``) or a connection
(``${{ connection.name }}``: a JSON object with ``url``, or PostgreSQL's ``host``, ``port``,
``user``, ``password``, ``dbname``). A relative file path is relative to the app folder.

A run that reads such a table fetches it once, whole, into memory as an Arrow table
(:mod:`patterns.store.outside`), so it suits tables of modest size (up to about a million
rows).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit

from patterns.engine.secrets import SecretStore
from patterns.errors import ConfigError
from patterns.graph.model import App, StorageDecl, StoreDecl
from patterns.graph.parameters import is_reference, parse_reference
from patterns.store.outside import Kind, read_outside

if TYPE_CHECKING:
    import pyarrow as pa

_SQLITE_SUFFIXES: Final = (".sqlite", ".sqlite3", ".db")
_DUCKDB_SUFFIXES: Final = (".duckdb", ".ddb")
_EXAMPLES: Final = ("a PostgreSQL URL (postgresql://user:password@host/db), a DuckDB file "
                    "(path/file.duckdb) or a SQLite file (path/file.sqlite)")


@dataclass(frozen=True)
class Outside:
    """A resolved storage: which database and where."""

    storage: str
    kind: Kind
    target: str  # the PostgreSQL URL or the file's absolute path


@dataclass(frozen=True)
class ExternalTable:
    """A store that lives in an outside database, as a run reads it."""

    store: str
    storage: str
    table: str  # its name in the outside database (``schema.table`` or ``table``)
    fetch: Callable[[], pa.Table]


def resolve(decl: StorageDecl, secrets: SecretStore, root: Path) -> Outside:
    """Where ``decl`` points; ConfigError (saying how to give it) when that is not known."""
    raw: Any = decl.connection
    if is_reference(raw):
        kind, ref = parse_reference(raw)
        key = f"connection.{ref}" if kind == "connection" else ref
        value = secrets.get(key)
        if value is None:
            example = "'postgresql://user:password@host/db'"
            raise ConfigError(
                f"storage '{decl.name}' needs its connection: {kind} {ref!r} is not set; set "
                f"it with `patterns create secret {key} {example}` (or a .duckdb/.sqlite file "
                f"path)")
        raw = value
        if kind == "connection":
            raw = _from_connection(decl.name, value)
    return _outside(decl.name, str(raw), root)


def _from_connection(name: str, value: str) -> str:
    try:
        doc = json.loads(value)
    except ValueError:
        return value  # a connection holding a plain URL
    if isinstance(doc, str):
        return doc
    if not isinstance(doc, dict):
        raise ConfigError(f"the connection of storage '{name}' is not a JSON object: give "
                          f"{_EXAMPLES}, or a JSON object with `url`")
    for key in ("url", "uri", "path", "file"):
        if isinstance(doc.get(key), str):
            return str(doc[key])
    if "host" in doc:
        from urllib.parse import quote

        user = quote(str(doc.get("user") or doc.get("username") or ""), safe="")
        password = quote(str(doc.get("password") or ""), safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        port = f":{doc['port']}" if doc.get("port") else ""
        database = doc.get("dbname") or doc.get("database") or ""
        return f"postgresql://{auth}{doc['host']}{port}/{database}"
    raise ConfigError(f"the connection of storage '{name}' has no `url` nor `host`: give "
                      f"{_EXAMPLES}")


def _outside(name: str, text: str, root: Path) -> Outside:
    text = text.strip()
    lowered = text.lower()
    if lowered.startswith(("postgresql://", "postgres://")):
        return Outside(name, "postgres", text)
    kind: Kind | None = None
    path = text
    for prefix, prefixed in (("duckdb:", "duckdb"), ("sqlite:", "sqlite")):
        if lowered.startswith(prefix):
            kind = prefixed  # type: ignore[assignment]
            path = unquote(urlsplit(text).path) if "//" in text else text[len(prefix):]
    if kind is None:
        if lowered.endswith(_DUCKDB_SUFFIXES):
            kind = "duckdb"
        elif lowered.endswith(_SQLITE_SUFFIXES):
            kind = "sqlite"
        else:
            raise ConfigError(f"the connection of storage '{name}' is not {_EXAMPLES} "
                              f"(not shown: it may hold a password)")
    file = (root / path).resolve()
    if not file.is_file():
        raise ConfigError(f"storage '{name}' names the {kind} file {file}, which does not "
                          f"exist: create it or fix the path")
    return Outside(name, kind, str(file))


def external_tables(app: App, secrets: SecretStore) -> dict[str, ExternalTable]:
    """Every store of ``app`` that lives in a storage whose connection resolves."""
    storages = {s.name: s for s in app.storages}
    found: dict[str, ExternalTable] = {}
    resolved: dict[str, Outside | None] = {}
    for store in app.stores:
        if store.storage is None or store.storage not in storages:
            continue
        if store.storage not in resolved:
            try:
                resolved[store.storage] = resolve(storages[store.storage], secrets, app.root)
            except ConfigError:
                resolved[store.storage] = None
        outside = resolved[store.storage]
        if outside is not None:
            found[store.name] = external_table(store, outside)
    return found


def external_table(store: StoreDecl, outside: Outside) -> ExternalTable:
    table = store.storage_table or store.name
    return ExternalTable(store.name, outside.storage, table,
                         lambda: read_outside(outside.kind, outside.target, table,
                                              store=store.name, storage=outside.storage))
