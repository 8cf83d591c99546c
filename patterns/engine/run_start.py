"""A run's start record, written only if the run lasts.

A run is recorded ``running`` when it starts so that the API, the CLI and Studio show it while
it runs, and so that an engine that dies mid-run leaves a record for the next one to end as
failed (:func:`patterns.engine.engine.end_lost_runs`). Writing that record costs a transaction
of its own (an ``INSERT`` and a ``COMMIT``, about 2.5 ms of the store's CPU on DuckDB) and
the run's end then an ``UPDATE`` of it, while most runs are over in tens of milliseconds.

So the start is written :data:`START_RECORD_AFTER` seconds after the run starts, on the
engine's recorder thread, and only if by then the run has neither ended nor committed: the
transaction that ends a shorter run inserts its whole record (start and end) instead. What
keeps every guarantee:

- a checkpoint that is not the run's last writes the start first (at once, if it is still
  waiting): no commit of a run is ever in the store without the run's record; so does the
  run's first line of output before it is passed on: a run anyone has seen running is
  recorded running (and failed, if its engine dies);
- the final checkpoint inserts the record in its own transaction: the run, its writes and
  its end are committed together, or none of them;
- an engine killed before the start was written leaves no record, but nothing of the run
  either (it had not committed); the scheduler's queue item of the run is found started
  by a dead engine and runs again, and the lost attempt is recorded then as failed
  (:func:`record_unrecorded`), as a written start would have been.

Only on a store one engine holds (DuckDB): on one several engines share (PostgreSQL) every
start is written at once, as the recovery of one engine's runs by another needs.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from patterns.store.interface import Store, Transaction
from patterns.store.model import RunRecord

log = logging.getLogger(__name__)

#: Seconds a run runs before its start is recorded on its own (see the module's text);
#: ``PATTERNS_START_RECORD_AFTER`` sets it (tests widen the window to kill an engine in it).
START_RECORD_AFTER = float(os.environ.get("PATTERNS_START_RECORD_AFTER") or 0.1)

# What became of the start record: waiting for its time, being written, written (or failed:
# the end writes the whole record), or left to the run's end.
_WAITING, _WRITING, _DONE, _LEFT = "waiting", "writing", "done", "left"


class StartRecord:
    """A run's record as it starts (status ``running``), written off the critical path if
    the run lasts; its end then updates it, or inserts the whole record if it never was."""

    def __init__(self, store: Store, record: RunRecord) -> None:
        self.store = store
        self.record = record
        #: Whether the start is in the store (the end updates it instead of inserting).
        self.ok = False
        self._lock = threading.Lock()
        self._state = _WAITING
        #: Set once the start's fate is known: written, failed, or left to the end.
        self._settled = threading.Event()

    def write_soon(self, executor: ThreadPoolExecutor) -> None:
        """Write the start on ``executor`` :data:`START_RECORD_AFTER` seconds from now,
        unless the run has committed or ended by then. (One thread serves every run: all
        wait the same time, in the order they started, so no run's wait delays another's.)"""
        # A store several engines share records every start at once, as before: another
        # engine's recovery must never find a run of a live engine unrecorded (its end
        # would then insert a record that engine has already inserted).
        shared = self.store.capabilities.concurrent_processes
        deadline = time.monotonic() + (0.0 if shared else START_RECORD_AFTER)
        executor.submit(self._write_at, deadline)

    def _write_at(self, deadline: float) -> None:
        self._settled.wait(max(0.0, deadline - time.monotonic()))
        self.write()

    def write(self) -> None:
        """Write the start now, unless it is written, being written, or left to the end."""
        with self._lock:
            if self._state != _WAITING:
                return
            self._state = _WRITING
        try:
            with self.store.autocommit() as tx:
                tx.runs.insert(self.record)
            self.ok = True
        except Exception as exc:  # the run goes on; its end writes the whole record
            log.warning("could not record the start of run %s (its end will): %s",
                        self.record.id, exc)
        finally:
            with self._lock:
                self._state = _DONE
            self._settled.set()

    def before_shown(self) -> None:
        """Before anything of the run is shown (its first output line, passed on to the
        CLI, the server's clients and Studio) or committed: its record is in the store, as
        it is once the run has lasted (a run seen running is recorded running, and is
        recorded failed if its engine dies). Nothing to do once written or left to the
        run's end."""
        if not self._settled.is_set():
            self.write()
            self._settled.wait()

    def before_checkpoint(self, final: bool) -> None:
        """Before each of the run's checkpoints: one that is not its last needs the record
        in the store first; the last inserts it in its own transaction if it is not."""
        if final:
            self.leave_to_end()
        else:
            self.before_shown()

    def after_failed_final(self) -> None:
        """The final checkpoint did not commit, and the run goes on: record its start now,
        so it shows as running."""
        with self._lock:
            if self._state == _LEFT:
                self._state = _WAITING
        self.write()

    def leave_to_end(self) -> None:
        """The run is ending: a start not written yet never will be (the end inserts the
        whole record); one being written is waited for."""
        with self._lock:
            if self._state == _WAITING:
                self._state = _LEFT
                self._settled.set()
        self._settled.wait()

    def record_end(self, tx: Transaction, final: RunRecord) -> None:
        if not self.ok:
            tx.runs.insert(final)
            return
        # Only what changed since the start (each column set costs the statement time).
        start = self.record
        ended = {"status": final.status, "ended_at": final.ended_at,
                 "exit_code": final.exit_code, "error": final.error,
                 "traceback": final.traceback, "rows_read": final.rows_read or {},
                 "rows_written": final.rows_written or {}, "checkpoints": final.checkpoints,
                 "seen_commit": final.seen_commit}
        was = {"status": start.status, "ended_at": start.ended_at,
               "exit_code": start.exit_code, "error": start.error,
               "traceback": start.traceback, "rows_read": start.rows_read or {},
               "rows_written": start.rows_written or {}, "checkpoints": start.checkpoints,
               "seen_commit": start.seen_commit}
        changed = {k: v for k, v in ended.items() if k == "status" or v != was[k]}
        if not tx.runs.update(final.id, **changed):
            tx.runs.insert(final)  # (not visible to this transaction: never lose it)


def record_unrecorded(tx: Transaction, store: Store, run_id: str, node_id: str,
                      node_title: str, trigger: str, attempt: int,
                      queued_at: dt.datetime | None, error: str, at: dt.datetime) -> None:
    """A run whose engine died before its start was recorded: record it as failed with
    ``error`` (its start time is its id's), unless it is recorded. (Not on a store several
    engines share: they record every start at once, and an engine found dead there may yet
    end its run.)"""
    if store.capabilities.concurrent_processes or tx.runs.get(run_id) is not None:
        return
    from patterns.store.ids import id_ms

    started = dt.datetime.fromtimestamp(id_ms(run_id) / 1000, dt.UTC)
    tx.runs.insert(RunRecord(
        id=run_id, node_id=node_id, node_title=node_title, trigger=trigger, status="failed",
        queued_at=queued_at or started, started_at=started, ended_at=at, attempt=attempt,
        error=error))
