"""DuckDB's checkpoints taken when the store is idle, instead of inside a commit.

DuckDB folds its write-ahead log into the database file (a *checkpoint*) inside the COMMIT of
whichever transaction takes the log past ``wal_autocheckpoint`` (16 MB by default). That
commit holds the store's commit lock meanwhile, so every other commit waits: 250-850 ms
for a 16 MB log on two loaded cores (measured in the 4-node pipeline, whose 100,000 records
write about 20 MB of log: one such stall per run of it).

Taking the checkpoint on a thread of its own does not make it free: DuckDB 2.0 lets reads go
on during a ``CHECKPOINT`` but holds any commit that arrives until the checkpoint is done
(measured: a one-row commit to an untouched table waited the whole 0.35-2.7 s of a 66 MB
checkpoint), so a checkpoint costs the commits that land during it whoever starts it. What
can be chosen is *when*: here, once no commit has come for :data:`IDLE_SECONDS` and the log
holds at least :data:`IDLE_BYTES`, so a burst of commits (a pipeline's records, a load)
runs without one and the checkpoint follows it. DuckDB's own checkpoint at commit stays as
the bound on the log's size, raised to :data:`WAL_LIMIT`: a store never idle long enough
checkpoints as before, a quarter as often.

Recovery is DuckDB's: a checkpoint killed half way (``kill -9``) leaves the log it had not
yet folded in, replayed at the next open; the log never holds more than about
:data:`WAL_LIMIT` plus one commit's writes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger("patterns.store")

#: DuckDB's ``wal_autocheckpoint``: the log's size past which the commit that crosses it
#: checkpoints (DuckDB's default is 16 MB).
WAL_LIMIT = "64MB"
#: No commit for this long: the store is idle.
IDLE_SECONDS = 0.5
#: The least log worth a checkpoint at an idle moment.
IDLE_BYTES = 4 << 20


class IdleCheckpoints:
    """A thread that checkpoints the store when it is idle and its log is big enough. Told
    of every commit (:meth:`committed`, one assignment); started at the first."""

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection], wal: Path,
                 commit_lock: threading.RLock, *, idle_seconds: float = IDLE_SECONDS,
                 idle_bytes: int = IDLE_BYTES) -> None:
        self._cursor = cursor
        self._wal = wal
        self._commit_lock = commit_lock
        self.idle_seconds = idle_seconds
        self.idle_bytes = idle_bytes
        self._last_commit = time.monotonic()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        #: Checkpoints taken (what tests and benchmarks look at).
        self.taken = 0

    def committed(self) -> None:
        """A commit has just ended (called under the store's commit lock)."""
        self._last_commit = time.monotonic()
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(target=self._loop, name="patterns-checkpoints",
                                            daemon=True)
            self._thread.start()
        elif self._thread is not None and self._waiting_for_commit:
            with self._wake:
                self._wake.notify_all()

    _waiting_for_commit = False

    def stop(self) -> None:
        """Stop the thread, after a checkpoint in progress (DuckDB does not close a
        connection while one of its cursors runs a statement)."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join()

    def _wal_bytes(self) -> int:
        try:
            return self._wal.stat().st_size
        except OSError:  # (none: checkpointed, nothing written since)
            return 0

    def _loop(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                quiet = time.monotonic() - self._last_commit
                if quiet < self.idle_seconds:  # (a second at most: the setting may change)
                    self._wake.wait(min(1.0, self.idle_seconds - quiet))
                    continue
                if self._wal_bytes() < self.idle_bytes:
                    self._waiting_for_commit = True  # (nothing to do until a commit)
                    self._wake.wait(1.0)
                    self._waiting_for_commit = False
                    continue
            self._checkpoint()

    def _checkpoint(self) -> None:
        # Not while a commit is under way (it would wait for the checkpoint in its COMMIT):
        # the commit lock is taken only to look, and let go before the checkpoint.
        if not self._commit_lock.acquire(blocking=False):
            self._last_commit = time.monotonic()
            return
        self._commit_lock.release()
        try:
            with contextlib.closing(self._cursor()) as cur:
                cur.execute("CHECKPOINT")
            self.taken += 1
        except Exception as exc:  # (DuckDB refused, e.g. the store is closing): later
            log.debug("an idle checkpoint of the store failed: %s", exc)
        self._last_commit = time.monotonic()
