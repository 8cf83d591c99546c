"""The commit watchdog of the DuckDB store: statements of a commit that passes its deadline,
or is asked to stop, are interrupted (the commit then rolls back)."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time

import duckdb

from patterns.errors import CommitTimeout


class Watchdog:
    """Interrupts the statements of commits that pass their deadline or are asked to stop.

    One thread for the whole store, checking every 50 ms while any commit is watched (most
    commits take a few milliseconds: a thread of their own would cost more than they do),
    kept for :attr:`KEEP` seconds after the last: runs committing every few tens of
    milliseconds would otherwise start it again for one commit in three (a thread's start
    waits for it to run: p99 3 ms of a trivial run's wall time on the loaded machine)."""

    PERIOD = 0.05
    KEEP = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[duckdb.DuckDBPyConnection, float | None,
                                       threading.Event | None]] = {}
        self._keys = itertools.count()
        self._running = False
        self._last = 0.0  # (when a commit was last unwatched)

    def watch(self, cur: duckdb.DuckDBPyConnection, deadline: float | None,
              stop: threading.Event | None) -> int:
        key = next(self._keys)
        with self._lock:
            self._watched[key] = (cur, deadline, stop)
            if not self._running:
                self._running = True
                threading.Thread(target=self._loop, name="patterns-commit-watchdog",
                                 daemon=True).start()
        return key

    def unwatch(self, key: int) -> None:
        with self._lock:
            self._watched.pop(key, None)
            self._last = time.monotonic()

    def _loop(self) -> None:
        while True:
            time.sleep(self.PERIOD)
            now = time.monotonic()
            with self._lock:
                # (kept from the last commit's end: a check seldom falls inside a commit of
                # a few milliseconds)
                if not self._watched and now - self._last >= self.KEEP:
                    self._running = False
                    return
                due = [key for key, (_, deadline, stop) in self._watched.items()
                       if (stop is not None and stop.is_set())
                       or (deadline is not None and now >= deadline)]
                for key in due:  # interrupted once; the commit then rolls back
                    cur = self._watched.pop(key)[0]
                    with contextlib.suppress(duckdb.Error):
                        cur.interrupt()


def interrupted(timeout: float | None, stop: threading.Event | None) -> CommitTimeout:
    """The error of a commit the watchdog interrupted, saying why."""
    why = ("asked to stop" if stop is not None and stop.is_set() else
           f"stopped after {timeout:g} s" if timeout is not None else "interrupted")
    return CommitTimeout(f"the checkpoint was {why}")
