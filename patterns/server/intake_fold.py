"""The fold of the webhook intake (:mod:`patterns.server.webhooks`): a committer thread
commits what is journaled — in the server's own journal and in every acceptor's segment —
to the store behind the acknowledgements, in large batches (one store transaction per
webhook node per batch), each carrying the journal offsets it reaches in the node's state,
in the same transaction as the rows; so a replay skips exactly what was committed. A
request the store refuses after it was acknowledged is set aside, never dropped; while the
store cannot commit, the records stay in the journal and the committer retries.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patterns.collector import held
from patterns.engine.store_rules import store_rules
from patterns.errors import PatternsError, StoreError
from patterns.server.journal import Entry, Journal
from patterns.store.interface import Store
from patterns.store.model import Checkpoint, TableOp

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("patterns.server")

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



class IntakeFold:
    """The committer thread of :class:`~patterns.server.webhooks.WebhookIntake` (the state
    it shares with it is set by its ``__init__``)."""

    store: Store
    on_commit: Callable[[], None]
    app: Callable[[], Any] | None
    folder: Path
    journal: Journal | None
    _cond: threading.Condition
    _append_lock: threading.Lock
    _unsynced: list[tuple[Chunk, list[Any]]]
    _pending: list[Chunk]
    _pending_records: int
    _readers: int
    _inflight: dict[str, int]
    _offsets: dict[tuple[str, str], int]
    _failure: Exception | None
    _stopping: bool
    _release: threading.Event
    _noted: dict[str, int]

    _segments: dict[str, int]

    def _take_noted(self) -> None:
        raise NotImplementedError

    def _poll_ends(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ the committer
    def _commit_loop(self) -> None:
        delay = 0.1
        while True:
            with self._cond:
                # (acceptors' segments: their ``.end`` files are read every COMMIT_LINGER;
                # always a timeout: an acceptor's first segment may be noted by no wake-up)
                self._cond.wait_for(lambda: bool(self._pending or self._noted)
                                    or self._stopping, COMMIT_LINGER)
                idle = not self._pending and not self._noted
                if idle and self._stopping:
                    return
                if not idle:
                    self._linger()
            if idle:
                self._poll_ends()  # (a linger's time waited already: no second one)
                if not self._noted:
                    continue
            if PAUSE == "commit":
                self._hold("before committing journaled records to the store")
            # The collector held off while a fold runs. A fold makes a few objects per
            # record (the journal's entries, their dicts and lists) that live until its
            # commit and are then freed by their counts: with the collector on they set off
            # collections that promote them, then full collections of the server's whole
            # heap (≈ 95 ms each, a quarter to a third of the server's CPU under the
            # benchmark's load: bench/RESULTS.md, target 7's sixth pass). The hold covers
            # the fold's commit, its wait for the store's commit lock included; a test's
            # pause (PATTERNS_INTAKE_PAUSE) gives the collector back while it holds.
            with held():
                committed, failure = self._fold()
            if failure is None:
                delay = 0.1
                if committed:
                    self.on_commit()
                    self._rotate()
                continue
            with self._cond:
                if self._stopping:
                    return
                self._cond.wait(delay)
            delay = min(delay * 2, 2.0)

    def _fold(self) -> tuple[bool, Exception | None]:
        """Read what acceptors made durable and commit a batch of what waits: whether a
        batch was committed, and the store's error if it could not be."""
        self._take_noted()  # (what acceptors made durable meanwhile: one read each)
        with self._cond:
            if not self._pending:
                return False, None
            batch: list[Chunk] = []
            count = 0
            for chunk in self._pending:
                if batch and count + chunk.count() > MAX_BATCH:
                    break
                batch.append(chunk)
                count += chunk.count()
        try:
            self._commit_batch(batch)
        except Exception as exc:
            if self._failure is None:
                log.error("webhook intake: the store cannot commit (%s); the records stay "
                          "in the journal, new requests get a 503 until a commit works", exc)
            with self._cond:
                self._failure = exc
                self._cond.notify_all()
            return False, exc
        with self._cond:
            del self._pending[:len(batch)]
            for chunk in batch:
                self._inflight[chunk.table] -= 1
                self._pending_records -= chunk.count()
            self._failure = None
            self._cond.notify_all()
        return True, None

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
        import gc

        log.warning("webhook intake paused %s (PATTERNS_INTAKE_PAUSE)", where)
        held = not gc.isenabled()  # (a hold inside a fold: the collector runs meanwhile)
        gc.enable()
        try:
            self._release.wait()
        finally:
            if held:
                gc.disable()

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


def chunks_of(entries: list[Entry], segment: str = "") -> list[Chunk]:
    """Journaled entries in chunks of one node and table, in journal order."""
    chunks: list[Chunk] = []
    count = 0  # (the last chunk's records: counted as it grows, not again per entry)
    for entry in entries:
        last = chunks[-1] if chunks else None
        if (last is not None and last.node_id == entry.node_id and last.table == entry.table
                and count + len(entry.records) <= MAX_BATCH):
            last.entries.append(entry)
            count += len(entry.records)
        else:
            chunks.append(Chunk(entry.node_id, entry.table, [entry], segment=segment))
            count = len(entry.records)
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
