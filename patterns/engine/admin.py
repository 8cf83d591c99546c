"""What the CLI and notebooks ask of a store outside a run: one function per question.

Each function takes a :class:`Desk` (an open store, the app, and the runs in progress) and
keyword arguments, and returns a JSON document. The same functions serve both doors to the
store (see :mod:`patterns.engine.door`): the CLI calls them on a store it opened itself when
no engine runs, and a running engine calls them on its own store when the CLI asks over the
data plane. A reset asked while a run that uses the node or table is in progress changes
nothing and answers ``{"busy": ...}``: the caller waits and asks again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from patterns.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

    from patterns.graph.model import App, Node
    from patterns.store.duckdb import DuckDBStore
    from patterns.store.model import RunRecord, TableMeta


@dataclass
class Desk:
    """Where admin functions work: an open store, the app (None when it does not load, for
    notebook reads), and the runs in progress as (run id, node) pairs."""

    store: DuckDBStore
    app: App | None
    running: Callable[[], list[tuple[str, Node]]] = field(default=lambda: [])
    #: True when a command opened the store file itself: no engine holds the store, so a
    #: run recorded as running is one whose engine died (the next engine will record it).
    engineless: bool = False


@dataclass(frozen=True)
class Scan:
    """What to read for one version of a table: the query, its columns, the JSON ones."""

    sql: str
    names: list[str]
    json_columns: list[str]
    version: int


# ---------------------------------------------------------------------- tables
def known_table(desk: Desk, name: str) -> TableMeta:
    """The store's table ``name``; an error naming the tables there if it has none."""
    meta = desk.store.table(name)
    if meta is not None:
        return meta
    app = desk.app
    if app is not None and any(s.name == name for s in app.stores):
        raise ConfigError(f"table '{name}' has no data yet: no run has written it; "
                          f"run the app first with `patterns run {app.root}`")
    names = ", ".join(t.name for t in desk.store.tables()) or "none yet"
    title = f" of app '{app.title}'" if app is not None else ""
    raise ConfigError(f"no table '{name}' in the store{title}: its tables are {names}")


def tables(desk: Desk) -> list[dict[str, Any]]:
    from patterns.store.migrations import META

    store = desk.store
    with store.cursor() as cur:
        last = {str(name): at for name, at in cur.execute(
            f"SELECT table_name, max(committed_at) FROM {META}.commits "
            f"GROUP BY table_name").fetchall()}
    docs: list[dict[str, Any]] = [
        {"name": m.name, "version": m.version, "rows": store.count(m),
         "columns": len(m.visible_names()), "last_commit": last.get(m.name), "exists": True}
        for m in store.tables()]
    known = {d["name"] for d in docs}
    stores = desk.app.stores if desk.app is not None else []
    docs += [{"name": s.name, "version": None, "rows": 0, "columns": 0, "last_commit": None,
              "exists": False} for s in stores if s.name not in known]
    return docs


def table(desk: Desk, name: str) -> dict[str, Any]:
    """One table's name, current version and row count (an error if it has none)."""
    meta = known_table(desk, name)
    return {"name": meta.name, "version": meta.version, "rows": desk.store.count(meta),
            "columns": [c.to_json() for c in meta.columns]}


def table_info(desk: Desk, name: str) -> dict[str, Any]:
    """A table as a notebook sees it (the SDK's TableInfo), whether it exists or not."""
    store = desk.store
    meta = store.table(name)
    if meta is None:
        return {"exists": False, "version": 0, "record_count": 0, "schema": None,
                "sql_name": f'main."{name}"', "last_id": None}
    return {"exists": True, "version": meta.version, "record_count": store.count(meta),
            "schema": meta.schema_doc(), "sql_name": store.view_name(name),
            "last_id": meta.last_id}


def versions(desk: Desk, name: str) -> list[dict[str, Any]]:
    meta = known_table(desk, name)
    docs = desk.store.versions(meta.name)
    for doc in docs:
        doc["current"] = doc["version"] == meta.version
        doc.pop("physical", None)
    return docs


def _new_version(desk: Desk, name: str,
                 make: Callable[[str, int | None], TableMeta]) -> dict[str, Any]:
    """A new version of table ``name`` made by ``make(name, keep_versions)`` once no run
    that reads or writes the table is in progress (else ``{"busy": ...}``)."""
    meta = known_table(desk, name)
    busy = _busy(desk, lambda node: meta.name in (*node.reads(), *node.writes()))
    if busy:
        return busy
    keep = desk.app.settings.keep_versions if desk.app is not None else None
    new = make(meta.name, keep)
    return {"name": new.name, "version": new.version, "old_version": meta.version,
            "columns": {c.name: c.kind for c in new.columns}}


def reset_table(desk: Desk, name: str) -> dict[str, Any]:
    return _new_version(desk, name, lambda table, keep: desk.store.reset_table(
        table, keep_versions=keep))


def count_where(desk: Desk, name: str, where: str) -> dict[str, Any]:
    """How many rows of table ``name`` the SQL condition ``where`` holds for, of how many."""
    from patterns.store.repair import count_where as count

    meta = known_table(desk, name)
    with desk.store.cursor() as cur:
        matched = count(cur, meta, where)
    return {"name": meta.name, "version": meta.version, "matched": matched,
            "rows": desk.store.count(meta)}


def delete_rows(desk: Desk, name: str, where: str) -> dict[str, Any]:
    """A new version of table ``name`` without the rows ``where`` holds for."""
    return _new_version(desk, name, lambda table, keep: desk.store.delete_rows(
        table, where, keep_versions=keep))


def alter_column(desk: Desk, name: str, column: str, type_name: str) -> dict[str, Any]:
    """A new version of table ``name`` whose ``column`` holds ``type_name`` values."""
    return _new_version(desk, name, lambda table, keep: desk.store.alter_column(
        table, column, type_name, keep_versions=keep))


def webhook_tokens(desk: Desk) -> dict[str, str]:
    """Each webhook node's URL token (made the first time it is asked for), by node id."""
    from patterns.store import queue

    if desk.app is None:
        return {}
    ids = sorted(n.id for n in desk.app.nodes if n.kind == "webhook")
    if not ids:
        return {}
    with desk.store.transaction() as cur:
        return {i: queue.ensure_webhook_token(cur, i) for i in ids}


# ---------------------------------------------------------------------- rows
def scan(desk: Desk, name: str, version: int | None = None, limit: int | None = None,
         offset: int | None = None) -> Scan:
    """How to read ``version`` of table ``name`` (default: the current one)."""
    from patterns.store.reads import scan_sql

    meta = known_table(desk, name)
    if version is None or version == meta.version:
        return Scan(scan_sql(meta, limit=limit, offset=offset), meta.visible_names(),
                    meta.json_columns(), meta.version)
    found = {v["version"]: v for v in desk.store.versions(meta.name)}
    kept = ", ".join(str(v) for v, doc in found.items() if doc["available"]) or "none"
    if version not in found or not found[version]["available"]:
        raise ConfigError(f"table '{meta.name}' has no version {version} to read; "
                          f"versions kept: {kept} (`patterns table versions` lists them)")
    return _old_scan(desk.store, meta, str(found[version]["physical"]), version, limit, offset)


def _old_scan(store: DuckDBStore, meta: TableMeta, physical: str, version: int,
              limit: int | None, offset: int | None) -> Scan:
    """An older version has the columns it had then: read them from the catalog."""
    from patterns.store.columns import Column
    from patterns.store.migrations import DATA
    from patterns.store.reads import scan_sql

    with store.cursor() as cur:
        rows = cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [DATA, physical]).fetchall()
    platform = {meta.physical_id, meta.created_column}
    # Only whether a column is JSON matters for reading it back.
    columns = tuple(Column(str(n), "json" if kind == "JSON" else "text")
                    for n, kind in rows if n not in platform)
    old = replace(meta, physical=physical, columns=columns)
    return Scan(scan_sql(old, limit=limit, offset=offset), old.visible_names(),
                old.json_columns(), version)


def read_batches(store: DuckDBStore, sql: str) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Stream the result of ``sql`` in Arrow batches (one batch in memory at a time)."""
    from patterns.store.reads import BATCH_ROWS

    cur = store.cursor()
    reader = cur.sql(sql).to_arrow_reader(BATCH_ROWS)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        finally:
            cur.close()

    return reader.schema, batches()


def query(desk: Desk, sql: str, params: list[Any] | None, dialect: str) -> pa.Table:
    """A notebook's ``read_sql``: one read-only query over any of the app's tables (run in
    a transaction that is always rolled back)."""
    from patterns.engine.sql_nodes import offline_query

    store = desk.store
    found, integer_division = offline_query(sql, dialect, [m.name for m in store.tables()])
    with store.cursor() as cur:
        if integer_division:
            cur.execute("SET integer_division = true")
        if store.read_only:
            return store.arrow(found, params, cur)
        cur.execute("BEGIN TRANSACTION")
        try:
            return store.arrow(found, params, cur)
        finally:
            cur.execute("ROLLBACK")


# ---------------------------------------------------------------------- runs and logs
def runs(desk: Desk, node_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    from patterns.store import meta

    with desk.store.cursor() as cur:
        records = meta.list_runs(cur, node_id, limit)
    return [(_lost(r) if desk.engineless else r).to_json() for r in records]


def _lost(record: RunRecord) -> RunRecord:
    """A run read ``running`` from a store no engine holds: its engine died, as the next
    engine to open the store will record."""
    if record.status != "running":
        return record
    from patterns.engine.engine import ENGINE_DIED

    return replace(record, status="failed", error=ENGINE_DIED)


def log(desk: Desk, node_id: str | None = None, run_key: str | None = None,
        node_label: str = "", root: str = "") -> dict[str, Any]:
    """A run's record and its stored output: ``run_key``'s, else the latest (of the node)."""
    from patterns.store import meta

    with desk.store.cursor() as cur:
        if run_key:
            record = _find_run(cur, desk, run_key, root)
            if node_id is not None and record.node_id != node_id:
                raise ConfigError(f"run {record.id} is a run of {record.node_title}, not of "
                                  f"node {node_label}: leave out --node, or pick its run")
        else:
            latest = meta.list_runs(cur, node_id, 1)
            if not latest:
                who = f"node {node_label}" if node_id else f"app '{_title(desk)}'"
                raise ConfigError(f"{who} has no runs yet: run it first with "
                                  f"`patterns run {root}`")
            record = latest[0]
        text = meta.get_log(cur, record.id) or ""
    return {"run": record.to_json(), "text": text}


def _find_run(cur: Any, desk: Desk, key: str, root: str) -> Any:
    """A run by its id, the start of its id, or its end (the 8 characters `patterns run`
    shows)."""
    from patterns.store import meta
    from patterns.store.migrations import META

    wanted = key.strip().upper()
    ids = [str(r) for (r,) in cur.execute(
        f"SELECT id FROM {META}.runs WHERE id = ? OR starts_with(id, ?) OR ends_with(id, ?) "
        f"ORDER BY queued_at DESC LIMIT 6", [wanted, wanted, wanted]).fetchall()]
    if wanted in ids:
        ids = [wanted]
    if not ids:
        raise ConfigError(f"no run '{key}' in app '{_title(desk)}': `patterns runs {root}` "
                          f"lists the runs and their ids")
    if len(ids) > 1:
        shown = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
        raise ConfigError(f"run '{key}' matches more than one run ({shown}): give more of "
                          f"its id")
    record = meta.get_run(cur, ids[0])
    assert record is not None
    return record


def _title(desk: Desk) -> str:
    return desk.app.title if desk.app is not None else "?"


# ---------------------------------------------------------------------- a node's memory
def state(desk: Desk, node_id: str) -> dict[str, Any]:
    from patterns.store import meta

    with desk.store.cursor() as cur:
        return meta.get_state(cur, node_id)


def reset_state(desk: Desk, node_id: str) -> dict[str, Any]:
    from patterns.store import meta

    busy = _busy(desk, lambda node: node.id == node_id)
    if busy:
        return busy
    store = desk.store
    with store.commit_lock, store.transaction() as cur:
        meta.set_state(cur, node_id, {}, dt.datetime.now(dt.UTC))
    return {}


def positions(desk: Desk, node_id: str) -> dict[str, Any]:
    from patterns.store import meta

    with desk.store.cursor() as cur:
        return meta.get_positions(cur, node_id)


def reset_stream(desk: Desk, node_id: str, table_name: str) -> dict[str, Any]:
    from patterns.store import meta

    busy = _busy(desk, lambda node: node.id == node_id)
    if busy:
        return busy
    store = desk.store
    with store.commit_lock, store.transaction() as cur:
        meta.set_position(cur, node_id, table_name, None, dt.datetime.now(dt.UTC))
    return {}


def _busy(desk: Desk, concerned: Callable[[Node], bool]) -> dict[str, Any]:
    """``{"busy": {run, node}}`` for the first run in progress that ``concerned`` picks."""
    for run_id, node in desk.running():
        if concerned(node):
            return {"busy": {"run": run_id, "node": node.label}}
    return {}


#: The admin functions reachable through a running engine, by name.
ACTIONS: dict[str, Callable[..., Any]] = {
    "tables": tables, "table": table, "table_info": table_info, "versions": versions,
    "reset_table": reset_table, "count_where": count_where, "delete_rows": delete_rows,
    "alter_column": alter_column, "webhook_tokens": webhook_tokens, "runs": runs, "log": log, "state": state,
    "reset_state": reset_state, "positions": positions, "reset_stream": reset_stream,
}
