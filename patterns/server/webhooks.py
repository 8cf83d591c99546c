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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue as queue_mod
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patterns.engine.session import store_rules
from patterns.errors import PatternsError, StoreError
from patterns.server.answers import Answer, BadRecords, Unavailable, deliver_all
from patterns.server.journal import (
    FILE_NAME,
    SEGMENT_GLOB,
    Entry,
    Journal,
    durable_end,
    encode,
    read_range,
    segment_file,
    segment_lock,
    segment_of,
)
from patterns.store.interface import Store
from patterns.store.model import Checkpoint, StoreRules, TableOp, TableOptions

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("patterns.server")

#: Most requests journaled with one fsync.
MAX_GROUP = 1000
#: Longest the writer gathers requests while an fsync runs (it writes them once it ends).
GATHER_WAIT = 0.05
#: Most records committed to the store in one transaction.
MAX_BATCH = 50_000
#: How long the committer waits for more records before a commit (answers do not wait).
COMMIT_LINGER = 0.1
#: The journal is rotated (committed records dropped) once its file is this large.
ROTATE_BYTES = 4 * 1024 * 1024
#: The key of a webhook node's state that holds its last committed journal offset.
OFFSET_KEY = "patterns_journal_offset"
#: A test hook: ``commit`` holds every store commit of journaled records (acks go on),
#: ``replay`` holds the replay after its first store transaction; until the intake stops.
PAUSE = os.environ.get("PATTERNS_INTAKE_PAUSE", "")


@dataclass
class Submission:
    node_id: str
    table: str
    records: list[dict[str, Any]]
    done: Answer = field(default_factory=Answer)
    written: bool = False  # in the journal: answered once the fsync covers it


@dataclass
class Chunk:
    """Journaled records of one node and table, waiting for the store: their checked
    Arrow data (None after a replay: made from the records when committed)."""

    node_id: str
    table: str
    entries: list[Entry]
    data: pa.Table | None = None
    #: the journal it is in: "" the server's own, else an acceptor's segment (``a1``...)
    segment: str = ""
    seq: int = 0  # its place in the queue to the store (settle() waits by it)

    @property
    def start(self) -> int:
        return self.entries[0].start

    @property
    def end(self) -> int:
        return self.entries[-1].end

    def count(self) -> int:
        return sum(len(e.records) for e in self.entries)


class WebhookIntake:
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
        for chunk in _chunks(todo, segment):
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
                for chunk in _chunks(entries, segment):
                    self._queue_chunk(chunk)
                self._segments[segment] = end
                self._cond.notify_all()

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

    # ------------------------------------------------------------------ the committer
    def _commit_loop(self) -> None:
        delay = 0.1
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending) or self._stopping)
                if not self._pending:
                    return
                self._linger()
                batch: list[Chunk] = []
                count = 0
                for chunk in self._pending:
                    if batch and count + chunk.count() > MAX_BATCH:
                        break
                    batch.append(chunk)
                    count += chunk.count()
            if PAUSE == "commit":
                self._hold("before committing journaled records to the store")
            try:
                self._commit_batch(batch)
            except Exception as exc:
                if self._failure is None:
                    log.error("webhook intake: the store cannot commit (%s); the records stay "
                              "in the journal, new requests get a 503 until a commit works", exc)
                with self._cond:
                    self._failure = exc
                    self._cond.notify_all()
                    if self._stopping:
                        return
                    self._cond.wait(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.1
            with self._cond:
                del self._pending[:len(batch)]
                for chunk in batch:
                    self._inflight[chunk.table] -= 1
                    self._pending_records -= chunk.count()
                self._failure = None
                self._cond.notify_all()
            self.on_commit()
            self._rotate()

    def _linger(self) -> None:
        """Wait a moment for more records (fewer, larger commits; the answers do not wait
        for commits), unless the batch is full, the intake stops or a reader waits."""
        deadline = time.monotonic() + COMMIT_LINGER
        while (not self._stopping and not self._readers
               and self._pending_records < MAX_BATCH):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    def _hold(self, where: str) -> None:
        log.warning("webhook intake paused %s (PATTERNS_INTAKE_PAUSE)", where)
        self._release.wait()

    def _rotate(self) -> None:
        assert self.journal is not None
        if self.journal.size() < ROTATE_BYTES:
            return
        with self._append_lock, self._cond:
            own = [c for c in self._pending if not c.segment]
            keep = (own[0].start if own else
                    self._unsynced[0][0].start if self._unsynced else self.journal.end)
            try:
                self.journal.rotate(keep)
            except PatternsError as exc:  # (kept as it is: rotated again later)
                log.warning("webhook intake: the journal could not be rotated: %s", exc)

    def _commit_batch(self, batch: list[Chunk]) -> None:
        """Commit ``batch``, one transaction per node; a node's records that the store
        refuses are committed request by request (a request refused alone is set aside)."""
        app = self.app() if self.app is not None else None
        by_node: dict[str, list[Chunk]] = {}
        for chunk in batch:
            by_node.setdefault(chunk.node_id, []).append(chunk)
        for node_id, chunks in by_node.items():
            todo = []
            for c in chunks:
                done = self._offsets.get((node_id, c.segment), 0)
                if c.end > done:
                    todo.append(c if c.entries[0].end > done else Chunk(
                        node_id, c.table, [e for e in c.entries if e.end > done],
                        segment=c.segment))
            if not todo:
                continue
            try:
                self._commit_node(node_id, todo, app)
            except StoreError:
                raise
            except PatternsError:  # the records: find the ones the store refuses
                for chunk in todo:
                    for entry in chunk.entries:
                        self._commit_entry(entry, chunk.segment, app)

    def _commit_node(self, node_id: str, chunks: list[Chunk], app: Any) -> None:
        by_table: dict[str, list[Chunk]] = {}
        for chunk in chunks:
            by_table.setdefault(chunk.table, []).append(chunk)
        ends: dict[str, int] = {}
        for chunk in chunks:
            ends[chunk.segment] = max(ends.get(chunk.segment, 0), chunk.end)
        ops = {table: [TableOp("append", data=_data(table, cs))]
               for table, cs in by_table.items()}
        self._commit(node_id, ops, ends, app)
        if PAUSE == "replay" and any(chunk.data is None for chunk in chunks):
            self._hold("after the first commit of the replay")

    def _commit_entry(self, entry: Entry, segment: str, app: Any) -> None:
        if entry.end <= self._offsets.get((entry.node_id, segment), 0):
            return
        from patterns.sdk._convert import records_to_arrow

        try:
            data = records_to_arrow(entry.records, entry.table)
            self._commit(entry.node_id, {entry.table: [TableOp("append", data=data)]},
                         {segment: entry.end}, app)
        except StoreError:
            raise
        except PatternsError as exc:
            self._set_aside(entry, str(exc))
            self._commit(entry.node_id, {}, {segment: entry.end}, app)

    def _commit(self, node_id: str, ops: dict[str, list[TableOp]], ends: dict[str, int],
                app: Any) -> None:
        """One store transaction: the rows and the journal offsets they reach (the node's
        offset in every journal segment, as its state)."""
        offsets = {seg: off for (node, seg), off in self._offsets.items() if node == node_id}
        offsets.update(ends)
        self.store.commit(Checkpoint(
            run_id=f"webhook-{secrets.token_hex(8)}", node_id=node_id, ops=ops,
            state={offset_key(seg): off for seg, off in sorted(offsets.items())},
            wakes=True, rules=store_rules(app) if app is not None else {},
            max_columns=app.settings.max_columns if app is not None else None,
            infer_timestamps=True))
        for seg, off in ends.items():
            self._offsets[(node_id, seg)] = off

    def _set_aside(self, entry: Entry, error: str) -> None:
        """An acknowledged request the store refuses (its table changed under it since it
        was checked): kept in ``intake-rejected.jsonl`` beside the journal, never dropped."""
        path = self.folder / "intake-rejected.jsonl"
        line = json.dumps({"node": entry.node_id, "table": entry.table, "error": error,
                           "records": entry.records, "at": time.time()}, default=str)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode("utf-8", "surrogatepass") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        log.error("webhook intake: %d record(s) for table %r were acknowledged but the store "
                  "refuses them now (%s); they are kept in %s", len(entry.records), entry.table,
                  error, path)

    # ------------------------------------------------------------------ the store
    def _webhook_ids(self) -> list[str]:
        app = self.app() if self.app is not None else None
        return [n.id for n in app.nodes if n.kind == "webhook"] if app is not None else []

    def _read_offsets(self, nodes: set[str]) -> dict[tuple[str, str], int]:
        """Each node's committed offset in each journal segment, as its state keeps them."""
        if not nodes:
            return {}
        found: dict[tuple[str, str], int] = {}
        with self.store.read() as view:
            for node in nodes:
                found[(node, "")] = 0
                for key, value in view.memory.state(node).items():
                    if key == OFFSET_KEY or key.startswith(OFFSET_KEY + "@"):
                        found[(node, key[len(OFFSET_KEY) + 1:])] = int(value or 0)
        return found


def offset_key(segment: str) -> str:
    """The state key holding a node's committed offset in a journal segment."""
    return f"{OFFSET_KEY}@{segment}" if segment else OFFSET_KEY


def _chunks(entries: list[Entry], segment: str = "") -> list[Chunk]:
    """Journaled entries in chunks of one node and table, in journal order."""
    chunks: list[Chunk] = []
    for entry in entries:
        last = chunks[-1] if chunks else None
        if (last is not None and last.node_id == entry.node_id and last.table == entry.table
                and last.count() + len(entry.records) <= MAX_BATCH):
            last.entries.append(entry)
        else:
            chunks.append(Chunk(entry.node_id, entry.table, [entry], segment=segment))
    return chunks


def _data(table: str, chunks: list[Chunk]) -> pa.Table:
    """The chunks' rows as one Arrow table: their checked data, or made from the records."""
    import pyarrow as pa

    from patterns.sdk._convert import records_to_arrow

    parts = [chunk.data for chunk in chunks]
    if all(part is not None for part in parts):
        try:
            # (one chunk: the store inserts many small ones at half the speed)
            return pa.concat_tables([p for p in parts if p is not None],
                                    promote_options="permissive").combine_chunks()
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return records_to_arrow([r for c in chunks for e in c.entries for r in e.records], table)
