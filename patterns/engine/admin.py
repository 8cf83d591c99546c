"""What the CLI and notebooks ask of a store outside a run: one function per question.

Each function takes a :class:`Desk` (an open store, the app, and the runs in progress) and
keyword arguments, and returns a JSON document. The same functions serve both doors to the
store (see :mod:`patterns.engine.door`): the CLI calls them on a store it opened itself when
no engine runs, and a running engine calls them on its own store when the CLI asks over the
data plane. A reset asked while a run that uses the node or table is in progress changes
nothing and answers ``{"busy": ...}``: the caller waits and asks again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from patterns.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    import pyarrow as pa

    from patterns.graph.model import App, Node
    from patterns.store.interface import Store, Transaction
    from patterns.store.model import RunRecord, TableMeta, TableOp


@dataclass
class Desk:
    """Where admin functions work: an open store, the app (None when it does not load, for
    notebook reads), and the runs in progress as (run id, node) pairs."""

    store: Store
    app: App | None
    running: Callable[[], list[tuple[str, Node]]] = field(default=lambda: [])
    #: Held while a reset (of a node's state or stream, or a table's new version) checks
    #: that no run concerns it and writes: no run starts then, so none reads what was there
    #: before and commits over the reset.
    quiet: Callable[[], AbstractContextManager[Any]] = field(default=nullcontext)
    #: True when a command opened the store file itself: no engine holds the store, so a
    #: run recorded as running is one whose engine died (the next engine will record it).
    engineless: bool = False


@dataclass(frozen=True)
class Scan:
    """What to read for one version of a table: its columns, the JSON ones, and (where the
    store is at hand) the table as of that version and the slice of rows."""

    names: list[str]
    json_columns: list[str]
    version: int
    meta: TableMeta | None = None
    limit: int | None = None
    offset: int | None = None


# ---------------------------------------------------------------------- tables
def known_table(desk: Desk, name: str) -> TableMeta:
    """The store's table ``name``; an error naming the tables there if it has none."""
    with desk.store.read() as view:
        meta = view.tables.get(name)
        if meta is not None:
            return meta
        present = [t.name for t in view.tables.all()]
        names = ", ".join(present) or "none yet"
    app = desk.app
    if app is not None and any(s.name == name for s in app.stores):
        raise ConfigError(f"table '{name}' has no data yet: no run has written it; "
                          f"run the app first with `patterns run {app.root}`")
    title = f" of app '{app.title}'" if app is not None else ""
    hint = did_you_mean(name, [*present, *(s.name for s in app.stores)] if app else present)
    raise ConfigError(f"no table '{name}' in the store{title}{hint}: its tables are {names}")


def tables(desk: Desk) -> list[dict[str, Any]]:
    with desk.store.read() as view:
        last = view.commits.last_per_table()
        docs: list[dict[str, Any]] = [
            {"name": m.name, "version": m.version, "rows": view.tables.count(m),
             "columns": len(m.visible_names()), "last_commit": last.get(m.name),
             "exists": True}
            for m in view.tables.all()]
    known = {d["name"] for d in docs}
    stores = desk.app.stores if desk.app is not None else []
    docs += [{"name": s.name, "version": None, "rows": 0, "columns": 0, "last_commit": None,
              "exists": False} for s in stores if s.name not in known]
    return docs


def table(desk: Desk, name: str) -> dict[str, Any]:
    """One table's name, current version and row count (an error if it has none)."""
    meta = known_table(desk, name)
    return {"name": meta.name, "version": meta.version, "rows": _count(desk.store, meta),
            "columns": [c.to_json() for c in meta.columns]}


def _count(store: Store, meta: TableMeta, where: str | None = None) -> int:
    with store.read() as view:
        return view.tables.count(meta, where)


def table_info(desk: Desk, name: str) -> dict[str, Any]:
    """A table as a notebook sees it (the SDK's TableInfo), whether it exists or not."""
    store = desk.store
    with store.read() as view:
        meta = view.tables.get(name)
        if meta is None:
            return {"exists": False, "version": 0, "record_count": 0, "schema": None,
                    "sql_name": store.view_name(name), "last_id": None}
        return {"exists": True, "version": meta.version, "record_count": view.tables.count(meta),
                "schema": meta.schema_doc(), "sql_name": store.view_name(name),
                "last_id": meta.last_id}


def versions(desk: Desk, name: str) -> list[dict[str, Any]]:
    meta = known_table(desk, name)
    with desk.store.read() as view:
        found = view.tables.versions(meta.name)
    return [{"version": v.version, "created_at": v.created_at, "run_id": v.run_id,
             "reason": v.reason, "available": v.available, "current": v.version == meta.version}
            for v in found]


def _new_version(desk: Desk, name: str,
                 make: Callable[[str, int | None], TableMeta]) -> dict[str, Any]:
    """A new version of table ``name`` made by ``make(name, keep_versions)`` once no run
    that reads or writes the table is in progress (else ``{"busy": ...}``); no run starts
    until it is made (one that read the old version could write it back)."""
    meta = known_table(desk, name)
    with desk.quiet():
        busy = _busy(desk, lambda node: meta.name in (*node.reads(), *node.writes()))
        if busy:
            return busy
        keep = desk.app.settings.keep_versions if desk.app is not None else None
        new = make(meta.name, keep)
    return {"name": new.name, "version": new.version, "old_version": meta.version,
            "columns": {c.name: c.kind for c in new.columns}}


def _commit_op(store: Store, name: str, op: TableOp, keep: int | None) -> TableMeta:
    """One table operation committed on its own (a command's, not a run's)."""
    from patterns.store.model import Checkpoint

    cp = Checkpoint(run_id="cli", node_id="cli", ops={name: [op]}, keep_versions=keep)
    return store.commit(cp).tables[name]


def reset_table(desk: Desk, name: str) -> dict[str, Any]:
    from patterns.store.model import TableOp

    return _new_version(desk, name, lambda table, keep: _commit_op(
        desk.store, table, TableOp("reset"), keep))


def count_where(desk: Desk, name: str, where: str) -> dict[str, Any]:
    """How many rows of table ``name`` the SQL condition ``where`` holds for, of how many."""
    meta = known_table(desk, name)
    matched = _count(desk.store, meta, where)
    return {"name": meta.name, "version": meta.version, "matched": matched,
            "rows": _count(desk.store, meta)}


def delete_rows(desk: Desk, name: str, where: str) -> dict[str, Any]:
    """A new version of table ``name`` without the rows ``where`` holds for."""
    from patterns.store.model import TableOp

    return _new_version(desk, name, lambda table, keep: _commit_op(
        desk.store, table, TableOp("delete", where=where), keep))


def alter_column(desk: Desk, name: str, column: str, type_name: str) -> dict[str, Any]:
    """A new version of table ``name`` whose ``column`` holds ``type_name`` values."""
    from patterns.store.model import TableOp

    return _new_version(desk, name, lambda table, keep: _commit_op(
        desk.store, table, TableOp("alter", alter=(column, type_name)), keep))


def webhook_tokens(desk: Desk) -> dict[str, str]:
    """Each webhook node's URL token (made the first time it is asked for), by node id."""
    if desk.app is None:
        return {}
    ids = sorted(n.id for n in desk.app.nodes if n.kind == "webhook")
    if not ids:
        return {}
    with desk.store.transaction() as tx:
        return {i: tx.webhooks.ensure_token(i) for i in ids}


# ---------------------------------------------------------------------- rows
def scan(desk: Desk, name: str, version: int | None = None, limit: int | None = None,
         offset: int | None = None) -> Scan:
    """How to read ``version`` of table ``name`` (default: the current one)."""
    meta = known_table(desk, name)
    if version is None or version == meta.version:
        return Scan(meta.visible_names(), meta.json_columns(), meta.version, meta, limit,
                    offset)
    with desk.store.read() as view:
        found = {v.version: v for v in view.tables.versions(meta.name)}
        kept = ", ".join(str(v) for v, doc in found.items() if doc.available) or "none"
        if version not in found or not found[version].available:
            raise ConfigError(f"table '{meta.name}' has no version {version} to read; "
                              f"versions kept: {kept} (`patterns table versions` lists them)")
        # An older version has the columns it had then (whether one is JSON matters).
        old = view.tables.as_of(meta, found[version])
    return Scan(old.visible_names(), old.json_columns(), version, old, limit, offset)


def read_batches(store: Store, scan: Scan) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Stream the rows ``scan`` names in Arrow batches (one batch in memory at a time)."""
    meta = scan.meta
    assert meta is not None
    reader = store.open_reader(lambda view: view.scan(meta, limit=scan.limit,
                                                      offset=scan.offset))
    return reader.schema, iter(reader)


def query(desk: Desk, sql: str, params: list[Any] | None, dialect: str) -> pa.Table:
    """A notebook's ``read_sql``: one read-only query over any of the app's tables (run in
    a transaction that is always rolled back)."""
    from patterns.engine.sql_nodes import offline_query
    from patterns.errors import NodeError, QueryError
    from patterns.store.model import Checkpoint

    store = desk.store
    with store.read() as view:
        names = [m.name for m in view.tables.all()]
    found, integer_division = offline_query(sql, dialect, names,
                                           store.capabilities.dialect)

    def run(view: Transaction) -> pa.Table:
        return view.query(found, params, integer_division=integer_division).read_all()

    try:
        if store.read_only:
            with store.read() as view:
                return run(view)
        return store.with_staged(Checkpoint(run_id="query", node_id="query"), run)
    except QueryError as exc:
        raise NodeError(f"read_sql failed: {exc}") from exc


# ---------------------------------------------------------------------- runs and logs
def runs(desk: Desk, node_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    with desk.store.read() as view:
        records = view.runs.recent(node_id, limit)
    return [(_lost(r) if desk.engineless else r).to_json() for r in records]


def schedules(desk: Desk) -> list[dict[str, Any]]:
    """Each cron node's next run (see :mod:`patterns.engine.schedules`)."""
    from patterns.engine.schedules import next_runs

    if desk.app is None:
        return []
    with desk.store.read() as view:
        kept = view.schedules.all()
    return [r.to_json() for r in next_runs(desk.app, kept)]


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
    with desk.store.read() as view:
        if run_key:
            record = _find_run(view, desk, run_key, root)
            if node_id is not None and record.node_id != node_id:
                raise ConfigError(f"run {record.id} is a run of {record.node_title}, not of "
                                  f"node {node_label}: leave out --node, or pick its run")
        else:
            latest = view.runs.recent(node_id, 1)
            if not latest:
                who = f"node {node_label}" if node_id else f"app '{_title(desk)}'"
                raise ConfigError(f"{who} has no runs yet: run it first with "
                                  f"`patterns run {root}`")
            record = latest[0]
        text = view.logs.get(record.id) or ""
    return {"run": record.to_json(), "text": text}


def _find_run(view: Transaction, desk: Desk, key: str, root: str) -> RunRecord:
    """A run by its id, its short id (its end: what every command shows), or the start of
    its id."""
    wanted = key.strip().upper()
    ids = view.runs.matching(wanted, 6)
    if wanted in ids:
        ids = [wanted]
    if not ids:
        raise ConfigError(f"no run '{key}' in app '{_title(desk)}': `patterns runs {root}` "
                          f"lists the runs and their ids")
    if len(ids) > 1:
        from patterns.store.model import short_run_id

        shown = ", ".join(short_run_id(i) for i in ids[:3]) + (", ..." if len(ids) > 3 else "")
        raise ConfigError(f"run '{key}' matches more than one run ({shown}): give one of "
                          f"these short ids (`patterns runs {root}` shows each run's)")
    record = view.runs.get(ids[0])
    assert record is not None
    return record


def _title(desk: Desk) -> str:
    return desk.app.title if desk.app is not None else "?"


# ---------------------------------------------------------------------- a node's memory
def state(desk: Desk, node_id: str) -> dict[str, Any]:
    with desk.store.read() as view:
        return view.memory.state(node_id)


def reset_state(desk: Desk, node_id: str) -> dict[str, Any]:
    return _reset(desk, node_id, lambda tx: tx.memory.set_state(node_id, None))


def positions(desk: Desk, node_id: str) -> dict[str, Any]:
    with desk.store.read() as view:
        return {t: p.to_json() for t, p in view.memory.positions(node_id).items()}


def reset_stream(desk: Desk, node_id: str, table_name: str) -> dict[str, Any]:
    return _reset(desk, node_id, lambda tx: tx.memory.reset_positions(node_id, table_name))


def _reset(desk: Desk, node_id: str, write: Callable[[Transaction], object]) -> dict[str, Any]:
    """``write`` a reset of node ``node_id``'s memory once none of its runs is in progress
    (else ``{"busy": ...}``), no run starting meanwhile."""
    with desk.quiet():
        busy = _busy(desk, lambda node: node.id == node_id)
        if busy:
            return busy
        with desk.store.transaction() as tx:
            write(tx)
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
    "schedules": schedules,
}
