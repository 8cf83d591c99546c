"""What decides which nodes new rows wake, kept in memory by the scheduler of a store that
one process holds (DuckDB).

The scheduler looks for out-of-date nodes after every commit (a webhook under load commits
several times a second). Asking the store each time — every node's latest finished run, and
every commit since the oldest of those — costs as much as the store's history: with a million
commits and a node whose input last changed long ago, one look took 2 s
(bench/RESULTS.md). Here the look costs what changed since the last one:

- per (table, writing node), the last commit that wakes readers, read from the store once,
  then only for the commits after the last one read (``last_by_writer``);
- per node, the commit its latest finished run read through, read once, then moved by each
  run's end as the scheduler learns it (:meth:`WakeIndex.ran`, once the end is committed).

Each is the store's answer or behind it, never ahead: a run's end it has not learnt yet makes
its node look out of date (a run that may find nothing), never the reverse. Several engines on
one store (PostgreSQL) ask the store each time: their runs end where this one does not see.
"""

from __future__ import annotations

import threading

from patterns.engine.reactive import out_of_date
from patterns.graph.model import Node
from patterns.store.interface import Store


class WakeIndex:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str | None], int] = {}
        self._scanned = 0  # every commit up to this one is in ``_last``
        self._loaded = False
        self._seen: dict[str, int] = {}

    def stale(self, nodes: list[Node]) -> list[Node]:
        """The ``nodes`` a table they read got rows in, from another node, after the commit
        their latest finished run read through."""
        if not nodes:
            return []
        top = self._store.last_commit()  # (committed: a read view begun after it has it)
        with self._lock:
            loaded, scanned = self._loaded, self._scanned
        if not loaded or top > scanned:
            with self._store.read() as view:
                last = view.commits.last_by_writer(scanned)
                seen = None if loaded else view.runs.seen_commits(succeeded_only=False)
            with self._lock:
                for key, seq in last.items():
                    self._last[key] = max(self._last.get(key, 0), seq)
                # (commits are numbered in commit order: the view has every one up to these)
                self._scanned = max(self._scanned, top, *last.values())
                if seen is not None:
                    for node_id, commit in seen.items():
                        self._seen[node_id] = max(self._seen.get(node_id, 0), commit)
                    self._loaded = True
        with self._lock:
            return out_of_date(nodes, self._seen, self._last)

    def reread_runs(self) -> None:
        """A run ended without the scheduler learning how (the engine failed around it):
        read every node's latest finished run from the store again at the next look."""
        with self._lock:
            self._loaded = False

    def ran(self, node_id: str, seen_commit: int) -> None:
        """A run of ``node_id`` ended (its end committed), having read through
        ``seen_commit``."""
        with self._lock:
            self._seen[node_id] = max(self._seen.get(node_id, 0), seen_commit)
