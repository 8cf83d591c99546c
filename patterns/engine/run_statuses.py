"""Each node's newest run's status, kept in memory by the engine of a store one process holds.

The Studio's live view asks for it ten times a second per open tab
(patterns/server/studio_live.py). Asking the store each time sorts the whole run history:
79 ms a time with 1,000,000 runs (bench/RESULTS.md), most of a core per tab on a server that
has served for months. Every run of such a store starts and ends in its one engine, so the
engine keeps the answer: read from the store once, at the first question, then moved by each
run's start (``running``) and end (its status) as the engine announces them. A run counts as
``running`` from its start, before the store has its record (a short run's record is written
with its end: run_start.py). Several engines on one store (PostgreSQL) ask the store: the
others' runs start and end where this one does not see them.
"""

from __future__ import annotations

import threading

from patterns.store.interface import Store
from patterns.store.model import RunRecord


class RunStatuses:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._status: dict[str, str] | None = None  # None: not read from the store yet
        self._early: dict[str, str] = {}  # what runs said before (or while) it was read

    def current(self) -> dict[str, str]:
        """Node id → the status of its newest run (nodes that never ran are absent)."""
        with self._lock:
            if self._status is not None:
                return dict(self._status)
        with self._store.read() as view:
            stored = view.runs.latest_status()
        with self._lock:
            if self._status is None:  # (a run's news is newer than what the store had)
                self._status = {**stored, **self._early}
                self._early.clear()
            return dict(self._status)

    def seen(self, run: RunRecord) -> None:
        """``run`` started or ended (its status now)."""
        with self._lock:
            (self._early if self._status is None else self._status)[run.node_id] = run.status
