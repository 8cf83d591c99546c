"""The embedded store: one DuckDB file holding the app's tables and the platform metadata.

The engine is the single writer. Every checkpoint is one DuckDB transaction taken under
:attr:`DuckDBStore.commit_lock`, which is also what makes ``patterns_id`` grow in commit
order. Readers use their own cursors and see committed data only.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb
import pyarrow as pa

from patterns import private_files
from patterns.errors import CommitTimeout, DataError, DiskFullError, StoreBusyError, StoreError
from patterns.positions import StreamPosition
from patterns.store import faults, page_builds
from patterns.store.duckdb_apply import apply_checkpoint
from patterns.store.duckdb_checkpoints import WAL_LIMIT, IdleCheckpoints
from patterns.store.duckdb_early import DuckDBEarlyWrites, OpenEarlyWrites
from patterns.store.duckdb_memory import NodeMemory
from patterns.store.duckdb_plain import Optimizer, PlainCursor, plain
from patterns.store.duckdb_view import DATA_ERRORS, DuckDBConnection, DuckDBView
from patterns.store.duckdb_watchdog import Watchdog, interrupted
from patterns.store.ids import UlidSequence
from patterns.store.interface import Archive, Capabilities, EarlyWrites, Transaction
from patterns.store.migrations import META, MIGRATIONS
from patterns.store.model import Checkpoint, CommitResult, TableMeta
from patterns.store.repositories import Tables, utcnow
from patterns.store.tables import id_compression, q

if TYPE_CHECKING:
    from patterns.store.duckdb_prepared import Prepared

T = TypeVar("T")

__all__ = ["CommitTimeout", "DuckDBStore", "disk_full"]


_DISK_FULL = ("No space left on device", "File too large", "Disk quota exceeded")


def disk_full(exc: BaseException) -> DiskFullError | None:
    """A clear one-line error for a write the disk had no room for (None for other errors);
    the transaction was rolled back, so the store holds what it held before."""
    text = str(exc)
    if not isinstance(exc, (duckdb.Error, OSError)) or not any(m in text for m in _DISK_FULL):
        return None
    where = re.search(r'file "([^"]+)"', text)
    reason = next(m for m in _DISK_FULL if m in text)
    return DiskFullError(f"the store's disk is full ({reason}"
                      f"{f' writing {where.group(1)}' if where else ''}): nothing of this "
                      f"write was stored; free some space and try again")


class DuckDBStore:
    """A Patterns store in one DuckDB file."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path: Path | None = Path(path)
        self.file = Path(path)
        self.read_only = read_only
        #: One process may hold the file open for writing.
        self.capabilities = Capabilities(backend="duckdb", dialect="duckdb",
                                         concurrent_processes=False, location=str(self.file))
        if read_only and not self.file.exists():
            raise StoreError(f"no store at {self.file}: run the app once with `patterns run` "
                             f"to create it")
        if self.file.parent.name == ".patterns":  # (an app's own folder: private)
            private_files.private_dir(self.file.parent)
        else:
            self.file.parent.mkdir(parents=True, exist_ok=True)
        #: DuckDB's write-ahead log, beside the store (made private after each write).
        self.wal = self.file.with_name(self.file.name + ".wal")
        try:
            self._con = duckdb.connect(str(self.file), read_only=read_only)
            self._con.execute("SET GLOBAL TimeZone = 'UTC'")
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreBusyError(
                    f"the store {self.file} is open in another process (a `duckdb` shell, "
                    f"a notebook's read-only view?); close it, or wait for it to finish"
                ) from exc
            raise StoreError(f"cannot open the store {self.file}: {exc}") from exc
        self.commit_lock = threading.RLock()
        #: DuckDB's checkpoints, taken when the store is idle (not in a commit, under the lock).
        self.checkpoints: IdleCheckpoints | None = None
        if not read_only:
            self._con.execute(f"SET GLOBAL wal_autocheckpoint = '{WAL_LIMIT}'")
            self.checkpoints = IdleCheckpoints(self.cursor, self.wal, self.commit_lock)
        self._watchdog = Watchdog()
        #: The cursor of commits of a few rows, kept with DuckDB's optimizer off.
        self._plain = PlainCursor(self.cursor)
        #: Each table's facts as the last commit left them (see :meth:`commit`).
        self._committed_tables: dict[str, TableMeta] = {}
        #: Nodes' state and positions as committed, once read (see :meth:`memory`).
        self._memory = NodeMemory()
        #: Writes to tables from outside a commit, and each table's commits with an op on
        #: it: what a SQL query worked out before its commit checks (:meth:`changes`).
        self._outside_writes = 0
        self._table_changes: dict[str, int] = {}
        #: Every write transaction as it begins, every write outside one once it is done:
        #: rows inserted before their commit go on only if none came since (see
        #: :meth:`write_number`).
        self._write_numbers = itertools.count(1)
        self._last_write = 0
        #: Checkpoints' rows inserted before their commit, not yet committed or thrown away.
        self._early = OpenEarlyWrites()
        if not read_only:
            self._migrate()
            self.keep_private()
        self._last_seq = 0
        if self.file.exists():
            with contextlib.suppress(duckdb.Error):  # a store made before migration 1
                self._last_seq = int(self._con.execute(
                    f"SELECT coalesce(max(seq), 0) FROM {META}.commits").fetchall()[0][0])
        self.ids = UlidSequence()
        #: How new table versions store their ids (see :func:`id_compression`).
        self.id_compression = ""
        if not read_only:
            with self._con.cursor() as cur:
                self.id_compression = id_compression(cur)
        for (last_id,) in self._con.execute(
                f"SELECT last_id FROM {META}.tables WHERE last_id IS NOT NULL").fetchall():
            self.ids.advance_past(last_id)
        self.shared_keys = self._shared_keys()

    def _shared_keys(self) -> str | None:
        """The last id that may share its block's key with later ids (migration 4; see
        :func:`~patterns.store.reads.stream_sql`)."""
        from patterns.store.reads import EVERY_KEY_SHARED

        try:
            found = self._con.execute(f"SELECT shared_up_to FROM {META}.id_keys").fetchall()
        except duckdb.CatalogException:  # (a store opened read-only, before migration 4)
            return EVERY_KEY_SHARED
        return str(found[0][0]) if found and found[0][0] is not None else None

    def _view(self, cur: duckdb.DuckDBPyConnection,
              optimizer: Optimizer | None = None) -> DuckDBView:
        return DuckDBView(cur, shared_keys=self.shared_keys, cursors=self.cursor,
                          optimizer=optimizer)

    # ------------------------------------------------------------------ connection
    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    def close(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.stop()
        for early in self._early:  # (runs cut short: nothing of theirs commits)
            early.close()  # (not under the commit lock: its inserts in flight take it)
        with self.commit_lock:
            self._plain.close()
        page_builds.stop(self.cursor)  # (DuckDB will not close under a running cursor)
        self._con.close()
        if not self.read_only:
            self.keep_private()

    def keep_private(self) -> None:
        """The store file and its write-ahead log readable by their owner only. DuckDB
        makes the log itself (with the process's umask) at the first write after each
        checkpoint: every write transaction checks it when it commits (one ``stat``)."""
        private_files.keep_private(self.file)
        private_files.keep_private(self.wal)

    @contextmanager
    def _transaction(self, cur: duckdb.DuckDBPyConnection | None = None, *,
                     keep: bool = False, begun: bool = False
                     ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction on a cursor of its own (``cur``, else a new one), closed
        after it unless ``keep`` (then only if the transaction failed); ``begun``: ``cur``'s
        transaction is open already (rows inserted before their commit). Write
        transactions take turns (the commit lock): DuckDB would otherwise fail one of two
        that touch the same rows."""
        with self.commit_lock:
            self._last_write = next(self._write_numbers)
            for early in self._early:  # (useless now: rolled back at once)
                early.outdated()
            cur = cur or self.cursor()
            if not begun:
                cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException as exc:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                cur.close()
                full = disk_full(exc)
                if full is not None:
                    raise full from None
                raise
            try:
                cur.execute("COMMIT")
            except duckdb.Error as exc:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                cur.close()
                raise disk_full(exc) or exc from None
            if not keep:
                cur.close()
            private_files.keep_private(self.wal)
            if self.checkpoints is not None:
                self.checkpoints.committed()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._transaction() as cur:
            view = self._view(cur)
            view.memory = self._memory.forgetting(view.memory)  # (a reset from outside)
            yield view

    @contextmanager
    def _outside(self) -> Iterator[None]:
        """A write to tables from outside a commit (a whole store copied in): queries
        prepared before it do not stand. (Other write transactions change run records,
        queues, state and positions, never a table: :attr:`_committed_tables` relies on
        that too.)"""
        self._outside_writes += 1
        try:
            yield
        finally:
            self._outside_writes += 1

    def changes(self) -> tuple[int, dict[str, int]]:
        """The writes from outside commits, and each table's commits with an op on it, so
        far (read under the commit lock)."""
        return self._outside_writes, dict(self._table_changes)

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        """A view of what is committed (each statement sees the latest commit)."""
        cur = self.cursor()
        try:
            view = self._view(cur)
            view.autocommit = True
            yield view
        finally:
            cur.close()

    @contextmanager
    def archive(self, *, write: bool = False) -> Iterator[Archive]:
        """The store whole (``patterns store copy``): one transaction to write, or a
        snapshot (a transaction rolled back at the end) to read."""
        from patterns.store.duckdb_archive import DuckDBArchive

        if write:
            try:
                with self._outside(), self._transaction() as cur:
                    self._committed_tables.clear()  # (a copy into this store changes them all)
                    self._memory.clear()
                    yield DuckDBArchive(self._view(cur))
            finally:
                self.shared_keys = self._shared_keys()
            return
        cur = self.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            yield DuckDBArchive(self._view(cur))
        finally:
            with contextlib.suppress(duckdb.Error):
                cur.execute("ROLLBACK")
            cur.close()

    @contextmanager
    def autocommit(self) -> Iterator[Transaction]:
        cur = self.cursor()
        try:
            yield self._view(cur)
        except BaseException as exc:
            full = disk_full(exc)
            if full is not None:
                raise full from None
            raise
        finally:
            cur.close()
            self._last_write = next(self._write_numbers)  # (once its writes committed)

    def write_number(self) -> int:
        """Grows with every write to the store: as each write transaction begins (under
        the commit lock) and once each write outside a transaction (:meth:`autocommit`)
        is done. Rows inserted before their commit (:mod:`patterns.store.duckdb_early`)
        are kept only while it stays what it was when their transaction began."""
        return self._last_write

    def early_writes(self, cp: Checkpoint, before: Callable[[], None]
                     ) -> DuckDBEarlyWrites | None:
        return None if self.read_only else self._early.begin(self, cp, before)

    def open_reader(self, read: Callable[[Transaction], pa.RecordBatchReader]
                    ) -> pa.RecordBatchReader:
        cur = self.cursor()
        try:
            reader = read(self._view(cur))
        except BaseException:
            cur.close()
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            finally:
                cur.close()

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def _migrate(self) -> None:
        cur = self.cursor()
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {META}")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {META}.migrations "
                    f"(version INTEGER, name VARCHAR, applied_at TIMESTAMPTZ)")
        done = {v for (v,) in cur.execute(f"SELECT version FROM {META}.migrations").fetchall()}
        for version, name, statements in MIGRATIONS:
            if version in done:
                continue
            with self._transaction() as tx:
                for step in statements:
                    if isinstance(step, str):
                        tx.execute(step)
                    else:
                        step(tx)
                tx.execute(f"INSERT INTO {META}.migrations VALUES (?, ?, ?)",
                           [version, name, utcnow()])

    # ------------------------------------------------------------------ tables
    # (DuckDB's own conveniences, for tests and benchmarks; the code above the store reads
    # through :meth:`read`.)
    def table(self, name: str, cur: duckdb.DuckDBPyConnection | None = None) -> TableMeta | None:
        """The table's committed facts: as the last commit left them (this store is the
        only writer of its tables), else read (in ``cur``'s transaction, if given)."""
        if cur is None:
            known = self._committed_tables.get(name)
            if known is not None:
                return known
            with self.cursor() as own:
                return self.table(name, own)
        return Tables(DuckDBConnection(cur)).get(name)

    def memory(self, node_id: str) -> tuple[dict[str, Any], dict[str, StreamPosition]]:
        """The node's state and positions as committed, read once and then kept up to date
        by this store's commits (their only writer besides write transactions, which
        forget what they change)."""
        with self.commit_lock:  # (no commit or write transaction between read and keep)
            found = self._memory.get(node_id)
            if found is None:
                with self.read() as view:
                    found = view.memory.memory(node_id)
                self._memory.keep(node_id, found)
        return found

    def tables(self) -> list[TableMeta]:
        with self.read() as view:
            return view.tables.all()

    def versions(self, name: str) -> list[dict[str, Any]]:
        with self.read() as view:
            return [{"version": v.version, "physical": v.physical, "created_at": v.created_at,
                     "run_id": v.run_id, "reason": v.reason, "available": v.available}
                    for v in view.tables.versions(name)]

    def count(self, meta: TableMeta, cur: duckdb.DuckDBPyConnection | None = None) -> int:
        if cur is None:
            with self.cursor() as own:
                return self.count(meta, own)
        return Tables(DuckDBConnection(cur)).count(meta)

    # ------------------------------------------------------------------ commits
    def commit(self, cp: Checkpoint, *, timeout: float | None = None,
               stop: threading.Event | None = None,
               also: Callable[[Transaction, CommitResult], None] | None = None,
               early: EarlyWrites | None = None,
               ) -> CommitResult:
        """Apply a checkpoint in one transaction: table ops, state, stream positions; then
        ``also(view, result)``, in the same transaction (the engine records a run's end
        with its final checkpoint). ``early``: the checkpoint's rows inserted before it
        (:meth:`early_writes`): its transaction is the commit's if nothing else wrote to
        the store since it began, else it is rolled back.

        With ``timeout`` (seconds), or when ``stop`` is set, statements still running are
        interrupted and the transaction rolls back (:class:`CommitTimeout`). A value that
        does not fit its column is a :class:`DataError`.

        A SQL statement's query is worked out before the lock where it can be
        (:mod:`patterns.store.duckdb_prepared`), on the cursor the commit then uses. A
        commit of a few rows runs without DuckDB's optimizer
        (:mod:`patterns.store.duckdb_plain`)."""
        if isinstance(early, DuckDBEarlyWrites):
            early.settle()  # (its inserts take the commit lock)
        try:
            return self._commit(cp, timeout, stop, also, early)
        finally:
            if early is not None:
                early.close()  # (rolled back if the commit did not take it; else nothing)

    def _commit(self, cp: Checkpoint, timeout: float | None, stop: threading.Event | None,
                also: Callable[[Transaction, CommitResult], None] | None,
                early: EarlyWrites | None) -> CommitResult:
        began = time.monotonic()
        with self._locked(cp, timeout, stop) as (own, cp):
            went_early = None
            if isinstance(early, DuckDBEarlyWrites):
                taken = early.take(cp)  # (None: rolled back, for the ordinary commit)
                if taken is not None:
                    own, went_early = taken, early
            optimizer = self._plain.take() if own is None and plain(cp) else None
            if optimizer is not None:
                own = optimizer.cur
            try:
                with self._transaction(own, keep=optimizer is not None,
                                       begun=went_early is not None) as cur:
                    watch = None
                    if timeout is not None or stop is not None:
                        deadline = None if timeout is None else \
                            began + max(timeout, 0.0)
                        watch = self._watchdog.watch(cur, deadline, stop)
                    try:
                        faults.point("commit.begin")
                        result = self._apply(cur, cp, cached=True, early=went_early)
                        if also is not None:
                            also(self._view(cur, optimizer), result)
                        faults.point("commit.end")
                    except duckdb.InterruptException as exc:
                        raise interrupted(timeout, stop) from exc
                    except DATA_ERRORS as exc:
                        raise DataError(str(exc)) from exc
                    finally:
                        if watch is not None:
                            self._watchdog.unwatch(watch)
            except BaseException:
                if optimizer is not None:
                    self._plain.done(optimizer, kept=False)
                self._committed_tables.clear()  # not sure what the store holds: read it again
                self._memory.clear()
                raise
            if optimizer is not None:
                self._plain.done(optimizer, kept=True)
            # Committed: these are now the tables' facts, for the next commit to start from.
            self._committed_tables.update(result.tables)
            for name in cp.ops:
                self._table_changes[name] = self._table_changes.get(name, 0) + 1
            self._memory.committed(cp)
            self._last_seq = max(self._last_seq, result.seq)
            return result

    #: Snapshots a commit's queries are worked out on, at most, before it runs them under
    #: the lock (each after a commit that changed what they read).
    PREPARE_TRIES = 2

    @contextmanager
    def _locked(self, cp: Checkpoint, timeout: float | None, stop: threading.Event | None
                ) -> Iterator[tuple[duckdb.DuckDBPyConnection | None, Checkpoint]]:
        """The commit lock, taken once ``cp``'s SQL queries are worked out (:meth:`_prepare`):
        the cursor they are on and ``cp`` using them where they still stand."""
        from patterns.store.duckdb_prepared import using

        for attempt in range(1, self.PREPARE_TRIES + 1):
            own, prepared = self._prepare(cp, timeout, stop)
            with self.commit_lock:
                if prepared is not None:
                    ready, stale = using(cp, prepared, self.changes(), self._has_columns)
                    if stale and attempt < self.PREPARE_TRIES and own is not None:
                        own.close()
                        continue
                    cp = ready
                yield own, cp
                return

    def _prepare(self, cp: Checkpoint, timeout: float | None, stop: threading.Event | None
                 ) -> tuple[duckdb.DuckDBPyConnection | None, Prepared | None]:
        """The queries of ``cp``'s SQL statements, run on a snapshot into temporary tables
        of a cursor of their own (the commit's), without holding the commit lock."""
        if not any(op.kind == "sql" for ops in cp.ops.values() for op in ops):
            return None, None
        from patterns.store.duckdb_prepared import Prepared, preparable, prepare

        wanted = preparable(cp)
        if not wanted:
            return None, None
        cur = self.cursor()
        with self.commit_lock:  # (the snapshot and the counters it goes with, together)
            cur.execute("BEGIN TRANSACTION")
            cur.execute(f"SELECT 1 FROM {META}.commits LIMIT 1").fetchall()
            seen = self.changes()
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        watch = self._watchdog.watch(cur, deadline, stop) \
            if deadline is not None or stop is not None else None
        try:
            results = prepare(cur, wanted)
            cur.execute("COMMIT")  # (temporary tables outlive it, on this cursor)
        except duckdb.InterruptException as exc:
            cur.close()
            raise interrupted(timeout, stop) from exc
        except BaseException:
            cur.close()
            raise
        finally:
            if watch is not None:
                self._watchdog.unwatch(watch)
        reads = {(table, index): tables for table, index, _, tables in wanted}
        return cur, Prepared(results, reads, seen)

    def _has_columns(self, name: str) -> bool:
        table = self.table(name)
        return table is not None and bool(table.columns)

    def last_commit(self) -> int:
        """The number of the newest commit (0: none yet). Kept in memory: only this store's
        commits add one."""
        return self._last_seq

    def _apply(self, cur: duckdb.DuckDBPyConnection, cp: Checkpoint,
               cached: bool = False, early: DuckDBEarlyWrites | None = None) -> CommitResult:
        """Apply ``cp`` in the open transaction of ``cur``. With ``cached``, a table's facts
        come from the last commit (this store is the only writer of its tables) instead of a
        query. ``early``: what of ``cp``'s appends ``cur``'s transaction already holds."""

        def found(name: str) -> TableMeta | None:
            table = self._committed_tables.get(name) if cached else None
            return table if table is not None else self.table(name, cur)

        return apply_checkpoint(cur, cp, self.ids, self.id_compression, found, early)

    def with_staged(self, cp: Checkpoint, read: Callable[[Transaction], T]) -> T:
        """Run ``read`` on a view where ``cp`` is applied, then throw the changes away.

        This is how a run reads its own uncommitted writes.
        """
        with self.commit_lock:
            cur = self.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                self._apply(cur, cp)
                return read(self._view(cur))
            finally:
                cur.execute("ROLLBACK")
                cur.close()

    # ------------------------------------------------------------------ reads
    def arrow(self, sql: str, params: list[Any] | None = None,
              cur: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
        if cur is None:
            with self.cursor() as own:
                return self.arrow(sql, params, own)
        return cur.sql(sql, params=params).to_arrow_table() if params else \
            cur.sql(sql).to_arrow_table()

    def view_name(self, name: str) -> str:
        return f"main.{q(name)}"
