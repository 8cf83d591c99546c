"""The request side of the webhook intake (:mod:`patterns.server.webhooks`): a writer
thread takes every request waiting, checks its records against their table as the requests
before them leave it (a record that does not fit is a 400, nothing written) and writes them
to the journal at once; a syncer thread fsyncs everything written so far, then answers it and
hands it to the committer (group commit: the requests that arrive during an fsync are
gathered, then checked and written as one group when it ends, and ride on the next one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue as queue_mod
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from patterns.engine.store_rules import store_rules
from patterns.errors import PatternsError, StoreError
from patterns.server.answers import Answer, BadRecords, Unavailable, deliver_all
from patterns.server.intake_fold import Chunk
from patterns.server.journal import Entry, Journal, encode
from patterns.store.interface import Store
from patterns.store.model import StoreRules, TableOptions

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("patterns.server")

#: Most requests journaled with one fsync.
MAX_GROUP = 1000
#: Longest the writer gathers requests while an fsync runs (it writes them once it ends).
GATHER_WAIT = 0.05


@dataclass
class Submission:
    node_id: str
    table: str
    records: list[dict[str, Any]]
    done: Answer = field(default_factory=Answer)
    written: bool = False  # in the journal: answered once the fsync covers it


class IntakeWriter:
    """The writer and syncer threads of :class:`~patterns.server.webhooks.WebhookIntake`
    (the state they share with it is set by its ``__init__``)."""

    store: Store
    app: Callable[[], Any] | None
    journal: Journal | None
    _queue: queue_mod.Queue[list[Submission] | None]
    _cond: threading.Condition
    _append_lock: threading.Lock
    _unsynced: list[tuple[Chunk, list[Submission]]]
    _closing: bool
    _syncing: bool
    _inflight: dict[str, int]
    _failure: Exception | None
    _columns: dict[str, tuple[dict[str, str], TableOptions]]
    _rules: tuple[Any, dict[str, StoreRules]]

    def _queue_chunk(self, chunk: Chunk) -> None:
        raise NotImplementedError

    @staticmethod
    def _answer(group: list[Submission]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Answer]] = {}
        for submission in group:
            answer = submission.done
            if not answer.done():
                continue  # (written: the syncer answers it)
            if answer.loop is None:
                answer.deliver()
            else:
                by_loop.setdefault(answer.loop, []).append(answer)
        for loop, answers in by_loop.items():
            with contextlib.suppress(RuntimeError):  # (the loop closed: nobody waits)
                loop.call_soon_threadsafe(deliver_all, answers)

    # ------------------------------------------------------------------ the writer
    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, stopping = list(first), False
            with self._cond:  # (what arrives while an fsync runs waits for the next one
                # anyway: gathered, it is checked and written once, not once per hand-over)
                self._cond.wait_for(lambda: not self._syncing, GATHER_WAIT)
            while len(group) < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue_mod.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                group.extend(more)
            try:
                self._write(group)
            except Exception as exc:  # (a bug: never leave a request waiting)
                log.exception("webhook intake failed")
                for submission in group:
                    if not submission.done.done() and not submission.written:
                        submission.done.set_exception(Unavailable(str(exc)))
            self._answer(group)
            if stopping:
                return

    def _write(self, group: list[Submission]) -> None:
        failure = self._failure
        if failure is not None:
            for submission in group:
                submission.done.set_exception(Unavailable(
                    f"the store cannot commit now ({failure}); try again later"))
            return
        before = dict(self._columns)
        checked = self._check(group)
        if not checked:
            return
        blobs = [encode(s.node_id, s.table, s.records) for _, subs in checked for s in subs]
        assert self.journal is not None
        with self._append_lock:
            start = self.journal.end
            try:
                ends = self.journal.write(blobs)
            except StoreError as exc:
                self._columns = before
                for _, subs in checked:
                    for submission in subs:
                        submission.done.set_exception(Unavailable(str(exc)))
                return
            at = iter(ends)
            for chunk, subs in checked:
                for submission in subs:
                    end = next(at)
                    chunk.entries.append(Entry(start, end, submission.node_id,
                                               submission.table, submission.records))
                    submission.written = True
                    start = end
            with self._cond:
                for chunk, _ in checked:
                    self._inflight[chunk.table] = self._inflight.get(chunk.table, 0) + 1
                self._unsynced.extend(checked)
                self._cond.notify_all()

    # ------------------------------------------------------------------ the syncer
    def _sync_loop(self) -> None:
        """fsync what the writer wrote (one fsync for all of it), then answer it and hand it
        to the committer."""
        assert self.journal is not None
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._unsynced) or self._closing)
                if not self._unsynced:
                    return
                self._syncing = True
            try:
                end = self.journal.sync()
            except StoreError as exc:
                with self._cond:
                    self._syncing = False
                    self._cond.notify_all()
                self._sync_failed(exc)
                continue
            with self._cond:
                self._syncing = False
                done = [w for w in self._unsynced if w[0].end <= end]
                del self._unsynced[:len(done)]
                for chunk, _ in done:  # (a record written meanwhile waits its turn)
                    self._queue_chunk(chunk)
                self._cond.notify_all()
            answered = [submission for _, subs in done for submission in subs]
            for submission in answered:
                submission.done.set_result(len(submission.records))
            self._answer(answered)

    def _sync_failed(self, exc: StoreError) -> None:
        """The fsync failed: what it was to cover is cut off the journal and refused."""
        assert self.journal is not None
        log.error("webhook intake: the journal's fsync failed (%s); the requests it was to "
                  "cover are refused", exc)
        with self._append_lock:
            self.journal.discard_unsynced()
            with self._cond:
                failed, self._unsynced = self._unsynced, []
                for chunk, _ in failed:
                    self._inflight[chunk.table] -= 1
        refused = [submission for _, subs in failed for submission in subs]
        for submission in refused:
            submission.done.set_exception(Unavailable(str(exc)))
        self._answer(refused)

    def _check(self, group: list[Submission]) -> list[tuple[Chunk, list[Submission]]]:
        """The group's requests that fit their tables, in chunks of one node and table with
        their checked data; each one that does not fit is failed (a 400), alone."""
        by_key: dict[tuple[str, str], list[Submission]] = {}
        for submission in group:
            by_key.setdefault((submission.node_id, submission.table), []).append(submission)
        checked: list[tuple[Chunk, list[Submission]]] = []
        for (node_id, table), subs in by_key.items():
            try:
                data = self._conform(table, [r for s in subs for r in s.records])
                checked.append((Chunk(node_id, table, [], data), subs))
                continue
            except StoreError as exc:
                for submission in subs:
                    submission.done.set_exception(Unavailable(str(exc)))
                continue
            except PatternsError:
                pass  # one of them does not fit: which?
            for submission in subs:  # one by one: a bad request fails only itself
                try:
                    data = self._conform(table, submission.records)
                except StoreError as exc:
                    submission.done.set_exception(Unavailable(str(exc)))
                except PatternsError as exc:  # (a DataError or a NodeError: the records)
                    submission.done.set_exception(BadRecords(str(exc)))
                else:
                    checked.append((Chunk(node_id, table, [], data), [submission]))
        return checked

    def _conform(self, table: str, records: list[dict[str, Any]]) -> pa.Table:
        """``records`` made to fit ``table`` as the journaled records before them leave it
        (what the store's commit will do to them), or a PatternsError saying why not."""
        from patterns.sdk._convert import records_to_arrow
        from patterns.store.conform import MAX_COLUMNS, conform, project
        from patterns.store.tables import check_fits, table_rules

        known = self._columns.get(table) if self._inflight.get(table) else None
        if known is None:  # nothing of it waits for the store: the store has it right
            with self.store.read() as view:
                meta = view.tables.get(table)
            known = (meta.kinds(), meta.options) if meta is not None else ({}, TableOptions())
        columns, options = known
        app = self.app() if self.app is not None else None
        if self._rules[0] is not app:
            self._rules = (app, store_rules(app) if app is not None else {})
        declared = self._rules[1].get(table)
        max_columns = (app.settings.max_columns if app is not None else None) or MAX_COLUMNS
        rules = table_rules(table, options, declared, max_columns, infer_timestamps=True)
        data = conform(table, columns, records_to_arrow(records, table), rules)
        check_fits(table, columns, data)
        self._columns[table] = (project(columns, data, rules), options)
        return data

