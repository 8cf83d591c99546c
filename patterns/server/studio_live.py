"""What the Studio shows live: each node's last run status and each table's row count (the
canvas's server-sent events), and each stream's lag in rows (node panels, table pages)."""

from __future__ import annotations

import contextlib
import time

from pydantic import BaseModel

from patterns.server.hub import AppService

#: Tables are counted again at least this often, even with no commit (a change made outside
#: a commit, e.g. an admin's reset, shows within it).
RECOUNT_SECONDS = 2.0


class StreamOut(BaseModel):
    """One node's stream over one table and how far behind it is."""

    node: str
    node_title: str
    table: str
    #: Rows of the table's current version the node has not read yet (None: the table has
    #: no rows yet, or lives in an outside database).
    behind: int | None
    #: Rows of the table's current version.
    rows: int | None
    #: Whether the node has read from it (False: its next run starts from the first row).
    started: bool
    #: The table version the position is on (another than the table's: it starts over).
    on_version: int | None = None
    order_by: str | None = None


def _statuses(svc: AppService) -> dict[str, str]:
    """Each node's last run status: the engine's (run_statuses.py), else the store's."""
    kept = svc.engine.statuses
    if kept is not None:
        return kept.current()
    with svc.engine.store.read() as view:
        return view.runs.latest_status()


def snapshot(svc: AppService) -> tuple[dict[str, str], dict[str, int]]:
    """Each node's last run status (``running`` while it runs) and each table's rows."""
    status = _statuses(svc)
    with svc.engine.store.read() as view:
        counts: dict[str, int] = {}
        for meta in view.tables.all():
            with contextlib.suppress(Exception):  # (a table being replaced this instant)
                counts[meta.name] = view.tables.count(meta)
    return status, counts


def live_snapshot(svc: AppService, counted: tuple[int, float, dict[str, int]] | None
                  ) -> tuple[dict[str, str], dict[str, int], tuple[int, float, dict[str, int]]]:
    """:func:`snapshot`, counting the tables again only after a commit since ``counted``
    (the last commit's number, when, and the counts then) or every :data:`RECOUNT_SECONDS`
    (a change made outside a commit, e.g. an admin's reset, shows within that)."""
    seq = svc.engine.store.last_commit()
    if counted is not None and counted[0] == seq and \
            time.monotonic() - counted[1] < RECOUNT_SECONDS:
        return _statuses(svc), counted[2], counted
    status, counts = snapshot(svc)
    return status, counts, (seq, time.monotonic(), counts)


def stream_lags(svc: AppService) -> list[StreamOut]:
    """Every (node, table it reads) of the app, and its stored position's lag."""
    from patterns.store.pages import behind_sql

    titles = {n.id: n.title for n in svc.app.nodes}
    pairs = {(n.id, t) for n in svc.app.nodes for t in n.reads()}
    out: list[StreamOut] = []
    with svc.engine.store.read() as view:
        positions = {(n, t): p for n, t, p in view.memory.all_positions()}
        metas = {m.name: m for m in view.tables.all()}
        for node_id, table in sorted(pairs | {k for k in positions if k[0] in titles}):
            pos = positions.get((node_id, table))
            meta = metas.get(table)
            behind = rows = None
            if meta is not None and not (pos is not None and pos.external):
                rows = view.tables.count(meta)
                found = view.query(*behind_sql(meta, pos)).read_all()
                behind = int(found.column(0)[0].as_py())
            out.append(StreamOut(node=node_id, node_title=titles[node_id], table=table,
                                 behind=behind, rows=rows,
                                 started=pos is not None and (pos.started or pos.hi is not None),
                                 on_version=pos.version if pos else None,
                                 order_by=pos.order_by if pos else None))
    return out
