"""When each cron node runs next, as `patterns schedule`, `patterns runs` and the API show it.

While the app is served, the server keeps each cron node's next slot in the store (see
:mod:`patterns.engine.scheduler`); that slot is the answer. When it is not served, or a node's
schedule changed since, the answer is the next slot from now: when the node would run if
the app were served. A kept slot already past (the server was stopped over it) is *due*: it
fires once as soon as the server starts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from patterns.engine.reactive import RUNNABLE_KINDS
from patterns.engine.scheduler import is_cron, next_fire

if TYPE_CHECKING:
    from patterns.graph.model import App
    from patterns.store.interface import Schedule


@dataclass(frozen=True)
class NextRun:
    node_id: str
    node: str
    cron: str
    timezone: str
    at: dt.datetime
    #: The server kept this slot (else: computed from now, the app not being served).
    kept: bool
    #: A kept slot already past: it fires when the server next starts.
    due: bool

    def to_json(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "node": self.node, "cron": self.cron,
                "timezone": self.timezone, "next_run": self.at.isoformat(), "kept": self.kept,
                "due": self.due}


def next_runs(app: App, kept: dict[str, Schedule], now: dt.datetime | None = None
              ) -> list[NextRun]:
    """Each cron node's next run, soonest first (nodes needing configuration do not run)."""
    now = now or dt.datetime.now(dt.UTC)
    found = []
    for node in app.nodes:
        if node.kind not in RUNNABLE_KINDS or not is_cron(node.trigger) or not node.configured:
            continue
        cron, tz = str(node.trigger), node.settings.timezone
        slot = kept.get(node.id)
        if slot is not None and (slot.cron, slot.timezone) == (cron, tz):
            at, is_kept = slot.next_fire, True
        else:
            at, is_kept = next_fire(cron, tz, now), False
        found.append(NextRun(node.id, node.title, cron, tz, at, is_kept, is_kept and at <= now))
    return sorted(found, key=lambda r: r.at)
