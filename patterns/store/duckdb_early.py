"""Rows inserted before their checkpoint commits (DuckDB; docs/store.md, "Rows inserted
before their checkpoint commits").

A run that appends many rows used to hand all of them to DuckDB at its checkpoint, so the
insert (about half a second per million rows, most of it DuckDB compressing the text) ran
after the node's last record, on the commit's path. Here, while the node goes on making
records, each whole row group of a table's staged appends (:data:`PART_ROWS`) is inserted
into a transaction opened for the checkpoint, with its ids; the commit then runs the
checkpoint's other statements in that same transaction and commits it.

What keeps every guarantee:

- *nothing is visible before the commit*: the rows are in an open transaction, which a
  killed engine or a dropped checkpoint never commits;
- *the commit sees the store as a fresh transaction would*: the early transaction is used
  only if no other write reached the store since it began (the store counts every write
  transaction as it begins and every write outside one as it ends,
  :meth:`DuckDBStore.write_number`), so its snapshot is still the latest. Otherwise it is
  rolled back and the checkpoint applied as before, from the staged Arrow data the engine
  keeps until the commit (its rows get new ids then);
- *ids grow in commit order*: ids are drawn as each part is inserted, under the commit lock;
  a commit that took ids in between was a write, which throws the early rows away;
- *rows are stored in id order*: they reach the table's storage at the commit, after every
  row committed before it, and a part never changes a table's columns
  (:class:`~patterns.store.tables.SchemaWouldChange`: left to the commit).

Only the first staged op of a table, an append, goes early, as a prefix of its rows; a
table the run creates, resets or replaces first, one whose rows carry a created time, and
a checkpoint with SQL statements keep the ordinary commit. A node whose early rows were
thrown away because something else wrote meanwhile does not try again for
:data:`BACKOFF_SECONDS` (a busy server would throw them away each time).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from patterns.store import faults
from patterns.store.migrations import META
from patterns.store.model import Checkpoint, TableMeta, TableOp
from patterns.store.tables import BIG_CHUNK_ROWS, SchemaWouldChange, TableWriter

if TYPE_CHECKING:
    from patterns.store.duckdb import DuckDBStore

log = logging.getLogger(__name__)

#: Rows inserted at a time: a whole row group of DuckDB's (a part that ends inside one
#: leaves it for the next part to continue, which made the commit dearer when measured).
PART_ROWS = BIG_CHUNK_ROWS
#: Seconds a node's checkpoints insert at commit only, after its early rows were thrown
#: away because another write reached the store meanwhile.
BACKOFF_SECONDS = 30.0


class DuckDBEarlyWrites:
    """One checkpoint's rows inserted before its commit (see the module's text).

    The inserts run on a thread of their own (:meth:`advance` returns at once), so the
    engine answers the node's write while DuckDB inserts: the node's next write is not held
    up by the insert of the one before. The run's session makes every other call under its
    lock; :meth:`settle` waits for the thread."""

    def __init__(self, store: DuckDBStore, cp: Checkpoint, before: Callable[[], None],
                 registry: OpenEarlyWrites) -> None:
        self._store = store
        self._registry = registry
        self._cp = cp
        self._before = before
        self._cur: duckdb.DuckDBPyConnection | None = None
        #: The store's write number when the transaction began (see the module's text).
        self._began_at = 0
        #: Per table: the rows of its first staged op inserted so far, and its facts after
        #: them (their last id).
        self.inserted: dict[str, tuple[int, TableMeta]] = {}
        #: Per table: the columns of the staged append its rows were inserted from. A later
        #: append merged into it may widen them (a nested field gains a key, ints become
        #: floats), which changes the earlier rows too: those inserted before then are not
        #: what the commit would store, and are thrown away.
        self._schemas: dict[str, pa.Schema] = {}
        self._done = False
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        #: More rows were staged while the thread inserted: it looks again.
        self._again = False

    # ------------------------------------------------------------------ before the commit
    def advance(self) -> None:
        """Insert, on the thread, the whole row groups staged since the last call."""
        with self._lock:
            if self._done:
                return
            if self._worker is not None:
                self._again = True
                return
            self._worker = threading.Thread(target=self._work, name="patterns-early-rows",
                                            daemon=True)
            self._worker.start()

    def settle(self) -> None:
        """Wait for the inserts in flight (before the commit; never under the commit lock,
        which they take)."""
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join()

    def _work(self) -> None:
        try:
            while True:
                self._insert_parts()
                with self._lock:  # (stopping and saying so at once: an advance() between
                    # the two would be lost, its rows left to the commit)
                    if not self._again or self._done:
                        self._worker = None
                        return
                    self._again = False
        except BaseException:
            with self._lock:
                self._worker = None
            raise

    def _insert_parts(self) -> None:
        # (the session stages meanwhile: its dict and lists are read as copies)
        staged = {name: list(ops) for name, ops in dict(self._cp.ops).items()}
        if self._done or _has_sql(staged):
            return
        parts = {name: part for name in sorted(staged)
                 if (part := self._next_part(name, staged[name])) is not None}
        if not parts:
            return
        if self._cur is None:
            self._before()
        store = self._store
        with store.commit_lock:
            if self._done:
                return
            if self._cur is not None and store.write_number() != self._began_at:
                self._thrown_away(fell_back=True)
                return
            try:
                if self._cur is None:
                    self._begin()
                for name, part in parts.items():
                    self._insert(name, part)
                    faults.point("early.part")
            except Exception as exc:  # (whatever it was, the commit applies the staged
                # rows as always, and says what is wrong with them: a value that does not
                # fit, a full disk...)
                log.debug("staged rows left to the commit: %s", exc)
                self._thrown_away(fell_back=False)

    def _next_part(self, name: str, ops: list[TableOp]) -> pa.Table | None:
        """The next whole row groups of ``name``'s first staged op that may go early."""
        if len(ops) != 1 or ops[0].kind != "append" or ops[0].data is None:
            return None  # (an op after the append: the append is whole; see the text)
        data = ops[0].data
        if name in self._schemas and not data.schema.equals(self._schemas[name]):
            return None  # (re-typed since: the commit throws the rows away, see _schemas)
        done = self.inserted[name][0] if name in self.inserted else 0
        n = (data.num_rows - done) // PART_ROWS * PART_ROWS
        return data.slice(done, n) if n > 0 else None

    def _begin(self) -> None:
        """(Under the commit lock.) The write number first, then a statement that fixes
        the transaction's snapshot: a write outside a transaction counts once it has
        committed, so one that this snapshot misses counts after the number read here."""
        store = self._store
        began_at = store.write_number()
        cur = store.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            cur.execute(f"SELECT 1 FROM {META}.commits LIMIT 1").fetchall()
        except BaseException:
            cur.close()
            raise
        self._cur, self._began_at = cur, began_at

    def _insert(self, name: str, part: pa.Table) -> None:
        """(Under the commit lock.)"""
        store, cp, cur = self._store, self._cp, self._cur
        assert cur is not None
        if name in self.inserted:
            done, meta = self.inserted[name]
        else:
            done, found = 0, store.table(name, cur)
            if found is None or found.created_column:
                raise SchemaWouldChange(name)  # (created here; a created time is the commit's)
            meta = found
        writer = TableWriter(cur, store.ids, dt.datetime.now(dt.UTC), cp.run_id, rules=cp.rules,
                             max_columns=cp.max_columns, infer_timestamps=cp.infer_timestamps,
                             id_compression=store.id_compression, fixed_schema=True)
        schema = part.schema  # (a slice's: the staged append's)
        if part.num_columns and part.column(0).num_chunks > 1:
            part = part.combine_chunks()
        meta, n = writer.apply(meta, TableOp("append", part))
        self.inserted[name] = (done + n, meta)
        self._schemas.setdefault(name, schema)

    # ------------------------------------------------------------------ at the commit
    def take(self, cp: Checkpoint) -> duckdb.DuckDBPyConnection | None:
        """(Under the commit lock, once :meth:`settle` d.) The open transaction, for the
        commit of ``cp`` to go on with, if it still may: else it is rolled back (and None)."""
        cur = self._cur
        if cur is None or self._done:
            self.close()
            return None
        usable = cp is self._cp and self._store.write_number() == self._began_at \
            and not _has_sql(cp.ops) \
            and all(_still_first(cp, name, n, self._schemas[name])
                    for name, (n, _) in self.inserted.items())
        if not usable:
            self._thrown_away(fell_back=self._store.write_number() != self._began_at)
            return None
        self._cur, self._done = None, True  # (the commit's now: it commits or rolls back)
        return cur

    def applying(self, name: str, op: TableOp) -> tuple[TableOp | None, int, TableMeta] | None:
        """For the commit's first op of table ``name``: what is left of it to apply (None:
        nothing), the rows already inserted and the table's facts after them; None when
        nothing of ``name`` went early."""
        if name not in self.inserted:
            return None
        n, meta = self.inserted[name]
        assert op.kind == "append" and op.data is not None
        rest = op.data.slice(n)
        return (TableOp("append", rest) if rest.num_rows else None), n, meta

    # ------------------------------------------------------------------ thrown away
    def close(self) -> None:
        """Roll back what was inserted (nothing to do once the commit took it)."""
        with self._lock:
            self._done = True
        self.settle()
        self._roll_back()
        self._registry.forget(self)

    def outdated(self) -> None:
        """(Under the commit lock, as another write transaction begins.) Roll back now what
        was inserted: the commit could only throw it away, and DuckDB takes no checkpoint
        while a transaction older than a commit is open, so the write-ahead log would grow
        with every other commit until this run's checkpoint (a long load: its length). No
        insert of it is in flight (they hold the commit lock); its checkpoint then commits
        the ordinary way."""
        if self._cur is None:
            return
        with self._lock:
            self._done = True
        self._roll_back()
        self._registry.forget(self)
        self._registry.fell_back(self._cp.node_id)

    def _roll_back(self) -> None:
        with self._lock:  # (taken once: by the commit lock's holder or the session)
            cur, self._cur = self._cur, None
        if cur is not None:
            with contextlib.suppress(duckdb.Error):
                cur.execute("ROLLBACK")
            cur.close()

    def _thrown_away(self, *, fell_back: bool) -> None:
        self.close()
        if fell_back:
            self._registry.fell_back(self._cp.node_id)


def _still_first(cp: Checkpoint, name: str, n: int, schema: pa.Schema) -> bool:
    """Whether ``name``'s first staged op is still the append whose first ``n`` rows went
    early, with the columns they went with."""
    ops = cp.ops.get(name, [])
    return bool(ops) and ops[0].kind == "append" and ops[0].data is not None \
        and ops[0].data.num_rows >= n and ops[0].data.schema.equals(schema)


def _has_sql(ops: Mapping[str, list[TableOp]]) -> bool:
    return any(op.kind == "sql" for table_ops in ops.values() for op in table_ops)


class OpenEarlyWrites:
    """A store's early transactions not yet committed or thrown away (iterated as a
    snapshot), and the nodes whose early rows were thrown away lately
    (:data:`BACKOFF_SECONDS`). Its own lock, not the commit lock: a run's first append of
    a checkpoint would wait for whatever commit holds that."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[DuckDBEarlyWrites] = set()
        self._backoff_until: dict[str, float] = {}

    def begin(self, store: DuckDBStore, cp: Checkpoint, before: Callable[[], None]
              ) -> DuckDBEarlyWrites | None:
        """Early writes for ``cp`` (None while its node backs off)."""
        with self._lock:
            until = self._backoff_until.get(cp.node_id)
            if until is not None:
                if until > time.monotonic():
                    return None
                del self._backoff_until[cp.node_id]
            early = DuckDBEarlyWrites(store, cp, before, self)
            self._open.add(early)
            return early

    def forget(self, early: DuckDBEarlyWrites) -> None:
        with self._lock:
            self._open.discard(early)

    def fell_back(self, node_id: str) -> None:
        with self._lock:
            self._backoff_until[node_id] = time.monotonic() + BACKOFF_SECONDS

    def __iter__(self) -> Iterator[DuckDBEarlyWrites]:
        with self._lock:
            return iter(list(self._open))

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)
