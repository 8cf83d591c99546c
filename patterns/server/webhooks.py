"""Webhook intake: a request's records journaled, acknowledged, then committed behind.

A request's records are first checked against their table as the requests before them
leave it (a record that does not fit is a 400, nothing written), then appended to the intake
journal (:mod:`patterns.server.journal`) and fsync'd; the 2xx is sent once that fsync covers
them. A writer thread takes every request waiting, checks them and writes them at once; a
syncer thread fsyncs everything written so far, then answers it (group commit: the requests
that arrive during an fsync are gathered, then checked and written as one group when it ends,
and ride on the next one). A committer thread
commits what is journaled to the store behind the acknowledgements, in large batches (one
store transaction per webhook node per batch), each carrying the journal offset it reaches
in the node's state, in the same transaction as the rows. At start, the journal is
replayed: what is past a node's committed offset is committed, so every acknowledged record
lands exactly once whatever was killed when. Committed records leave the journal as it is
rotated. Reads through the server's API wait for what was acknowledged before them
(:meth:`WebhookIntake.settle`), so a client that got a 2xx then reads the table sees its rows.

If the store cannot commit (its disk is full...), the acknowledged records stay in the
journal, the committer retries, and new requests are refused with a 503 until a commit works
again; if the journal itself cannot be written, the request is a 503 and nothing was
acknowledged. (Answers and response webhooks: :mod:`patterns.server.answers`.)

This module holds the intake's life, its hand-over of requests and what it knows of the
acceptors' segments; the writer and syncer threads are in
:mod:`patterns.server.intake_writer`, the committer (the fold of every journal into the
store) in :mod:`patterns.server.intake_fold`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue as queue_mod
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from patterns.errors import PatternsError
from patterns.server.answers import Answer
from patterns.server.intake_fold import OFFSET_KEY, Chunk, IntakeFold, chunks_of, offset_key
from patterns.server.intake_writer import IntakeWriter, Submission
from patterns.server.journal import (
    FILE_NAME,
    SEGMENT_GLOB,
    Entry,
    Journal,
    durable_end,
    read_range,
    segment_file,
    segment_lock,
    segment_of,
)
from patterns.store.interface import Store
from patterns.store.model import StoreRules, TableOptions

__all__ = ["OFFSET_KEY", "WebhookIntake", "offset_key"]

log = logging.getLogger("patterns.server")


class WebhookIntake(IntakeWriter, IntakeFold):
    """The journal, its writer thread and its committer thread, for one app's webhooks."""

    def __init__(self, store: Store, on_commit: Callable[[], None],
                 app: Callable[[], Any] | None = None, *, folder: Path) -> None:
        self.store = store
        self.on_commit = on_commit
        self.app = app  # the app now (its tables' contracts and settings.max_columns)
        self.folder = folder  # where the journal lives: beside the store file
        self.journal: Journal | None = None
        self._queue: queue_mod.Queue[list[Submission] | None] = queue_mod.Queue()
        #: an event loop -> the submissions its requests made since it last handed them over
        self._handoff: dict[asyncio.AbstractEventLoop, list[Submission]] = {}
        self._cond = threading.Condition()
        self._append_lock = threading.Lock()  # appends and rotations, one at a time
        #: written to the journal, not yet covered by an fsync (nor answered)
        self._unsynced: list[tuple[Chunk, list[Submission]]] = []
        self._pending: list[Chunk] = []  # journaled, not committed, in journal order
        self._closing = False  # the writer is done: the syncer ends once all is synced
        self._syncing = False  # an fsync runs (the writer gathers requests meanwhile)
        self._pending_records = 0
        self._readers = 0  # settle() calls waiting
        self._inflight: dict[str, int] = {}  # table -> pending chunks
        self._queued = 0  # seq of the last chunk acknowledged and queued for the store
        #: (node, journal segment) -> its committed offset (as in the store)
        self._offsets: dict[tuple[str, str], int] = {}
        #: an acceptor's segment -> the offset up to which it is queued (read)
        self._segments: dict[str, int] = {}
        self._segment_lock = threading.Lock()  # (reads of segments, one at a time)
        #: an acceptor's segment -> how far it said it is durable, not yet read (the
        #: committer reads it before its next commit: one read for many groups)
        self._noted: dict[str, int] = {}
        self._failure: Exception | None = None
        self._stopping = False
        self._release = threading.Event()  # ends a PATTERNS_INTAKE_PAUSE hold
        #: table -> its columns once the pending records land, and its options
        self._columns: dict[str, tuple[dict[str, str], TableOptions]] = {}
        self._rules: tuple[Any, dict[str, StoreRules]] = (None, {})
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ life
    def start(self) -> None:
        """Open the journal, queue what it holds past the store's offsets (the replay), and
        start taking requests."""
        nodes = set(self._webhook_ids())
        self._offsets = self._read_offsets(nodes)
        self.journal = Journal(self.folder / FILE_NAME, floor=self.segment_floor(""))
        self._replay("", self.journal.entries)
        self.journal.entries = []
        for path in sorted(self.folder.glob(SEGMENT_GLOB)):  # (acceptors' segments)
            segment = segment_of(path)
            with segment_lock(self.folder, segment):  # (no acceptor of a dead server writes)
                journal = Journal(path, floor=self.segment_floor(segment))
                self._replay(segment, journal.entries)
                self._segments[segment] = journal.end
                journal.close()
        for target, name in ((self._write_loop, "patterns-intake"),
                             (self._sync_loop, "patterns-intake-sync"),
                             (self._commit_loop, "patterns-commit")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _replay(self, segment: str, entries: list[Entry]) -> None:
        """Queue what a journal (segment) holds past its nodes' committed offsets."""
        self._offsets.update(self._read_offsets(
            {e.node_id for e in entries} - {n for n, _ in self._offsets}))
        todo = [e for e in entries if e.end > self._offsets.get((e.node_id, segment), 0)]
        if todo:
            log.info("webhook intake: replaying %d journaled request(s) not yet committed%s",
                     len(todo), f" (segment {segment})" if segment else "")
        for chunk in chunks_of(todo, segment):
            self._queue_chunk(chunk)

    def _queue_chunk(self, chunk: Chunk) -> None:
        """``chunk`` (acknowledged) joins the queue to the store (call with _cond held, or
        before the threads start)."""
        self._queued += 1
        chunk.seq = self._queued
        self._pending.append(chunk)
        self._pending_records += chunk.count()
        if chunk.data is None:  # (the writer counted its own chunks when it wrote them)
            self._inflight[chunk.table] = self._inflight.get(chunk.table, 0) + 1

    def segment_floor(self, segment: str) -> int:
        """The highest offset of ``segment`` the store has seen committed (a new journal
        of it starts there, so an old offset is never reused)."""
        return max((off for (_, seg), off in self._offsets.items() if seg == segment),
                   default=0)

    def take_segment(self, segment: str, end: int) -> None:
        """An acceptor made its segment durable up to ``end`` (it answers the requests in it
        once it is): queue its new records for the store."""
        with self._segment_lock:
            start = self._segments.setdefault(segment, self.segment_floor(segment))
            if end <= start:
                return
            entries = read_range(self.folder / segment_file(segment), start, end)
            self._offsets.update(self._read_offsets(
                {e.node_id for e in entries} - {n for n, _ in self._offsets}))
            with self._cond:
                for chunk in chunks_of(entries, segment):
                    self._queue_chunk(chunk)
                self._segments[segment] = end
                self._cond.notify_all()

    def note_segment(self, segment: str, end: int) -> None:
        """An acceptor made its segment durable up to ``end`` and answered: the committer
        reads and queues its new records before its next commit (:meth:`take_segment` once
        for every group that came meanwhile, not once per group)."""
        with self._cond:
            wake = not self._pending and not self._noted  # (else the committer is coming)
            if end > self._noted.get(segment, 0):
                self._noted[segment] = end
            if wake:
                self._cond.notify_all()

    def _take_noted(self) -> None:
        with self._cond:
            noted, self._noted = self._noted, {}
        for segment, end in noted.items():
            try:
                self.take_segment(segment, end)
            except PatternsError as exc:  # (kept in the segment: replayed at the next start)
                log.error("webhook intake: segment %s cannot be read: %s", segment, exc)

    def _poll_ends(self) -> None:
        """Note how far each acceptor's segment is durable, from its ``.end`` file (written
        before it answers; it does not tell this process after every fsync)."""
        for segment in list(self._segments):
            end = durable_end(self.folder, segment)
            if end is not None and end > self._segments.get(segment, 0) and \
                    end > self._noted.get(segment, 0):
                self.note_segment(segment, end)

    def _catch_up(self) -> None:
        """Queue what every acceptor has acknowledged so far (each says in its segment's
        ``.end`` file how far it is durable, before it answers): so a read waits for it."""
        for segment in list(self._segments):
            end = durable_end(self.folder, segment)
            if end is None or end <= self._segments[segment]:
                continue
            try:
                self.take_segment(segment, end)
            except PatternsError as exc:  # (kept in the segment: replayed at the next start)
                log.error("webhook intake: segment %s cannot be read: %s", segment, exc)

    def segment_kept(self, segment: str) -> int:
        """Where ``segment`` may be cut: every record before it is committed."""
        with self._cond:
            return min((c.start for c in self._pending if c.segment == segment),
                       default=self._segments.get(segment, self.segment_floor(segment)))

    def failure(self) -> str | None:
        """Why the store cannot commit now (None when it can)."""
        failure = self._failure
        return None if failure is None else str(failure)

    def stop(self) -> None:
        """Journal and answer what is waiting, commit what is journaled, then stop."""
        if not self._threads:
            return
        self._queue.put(None)
        self._threads[0].join()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._threads[1].join()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._release.set()
        self._threads[2].join()
        assert self.journal is not None
        with contextlib.suppress(PatternsError), self._append_lock, self._cond:
            if not self._pending and not self._unsynced:
                self.journal.rotate(self.journal.end)
        self.journal.close()

    def submit(self, node_id: str, table: str, records: list[dict[str, Any]]) -> Future[int]:
        """Journal ``records``; the future's result is their count once they are durable."""
        submission = Submission(node_id, table, records)
        self._queue.put([submission])
        future = submission.done.future
        assert isinstance(future, Future)
        return future

    def submit_async(self, node_id: str, table: str,
                     records: list[dict[str, Any]]) -> asyncio.Future[int]:
        """:meth:`submit` for the running event loop (call it on the loop's thread). The
        requests a loop takes in one pass reach the writer together, in one hand-over (a
        thread wake-up per pass, not per request)."""
        loop = asyncio.get_running_loop()
        answer = Answer(loop)
        waiting = self._handoff.get(loop)
        if waiting is None:
            waiting = self._handoff[loop] = []
            loop.call_soon(self._hand_over, loop)
        waiting.append(Submission(node_id, table, records, answer))
        future = answer.future
        assert isinstance(future, asyncio.Future)
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        self._queue.put(self._handoff.pop(loop))

    def _committed(self) -> int:
        """The seq up to which every queued chunk is committed."""
        pending = self._pending
        return pending[0].seq - 1 if pending else self._queued

    def settled(self) -> bool:
        """True when every acknowledged record is committed (or the store is failing)."""
        if self._segments:
            self._catch_up()
        return self._committed() >= self._queued or self._failure is not None

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the records acknowledged so far are committed (or the store fails)."""
        if self._segments:
            self._catch_up()
        with self._cond:
            target = self._queued
            self._readers += 1
            self._cond.notify_all()
            try:
                self._cond.wait_for(lambda: self._committed() >= target
                                    or self._failure is not None or self._stopping, timeout)
            finally:
                self._readers -= 1
