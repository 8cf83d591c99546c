"""The PostgreSQL store: tables, streams and platform metadata in one PostgreSQL database.

Several processes (engines, the CLI) may use one store at once. Every write transaction, and
every commit, first takes the store's advisory lock (``pg_advisory_xact_lock``): commits
take turns, so ``patterns_id`` (started after the store's last id, kept in
``patterns_meta.ids``) and the commit sequence grow in commit order whichever process
commits. Readers take a connection of their own and see committed data only; a read view is
one snapshot (``REPEATABLE READ``). A commit that runs past its ``timeout``, or whose
``stop`` is set, is cancelled on the server and rolled back (:class:`CommitTimeout`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from patterns.errors import CommitTimeout, PatternsError, StoreError
from patterns.positions import StreamPosition
from patterns.store.ids import UlidSequence
from patterns.store.interface import Capabilities, EarlyWrites, Transaction
from patterns.store.model import Checkpoint, CommitResult, TableMeta, TableOp, TableOptions
from patterns.store.postgres.connection import Pool, mapped, masked
from patterns.store.postgres.migrations import COMMIT_LOCK, META, VIEWS, migrate
from patterns.store.postgres.tables import PgTableWriter, prune_versions, qualified, view
from patterns.store.postgres.view import PgView

if TYPE_CHECKING:
    import psycopg

    from patterns.store.postgres.archive import PgArchive

    Connection = psycopg.Connection[tuple[Any, ...]]

T = TypeVar("T")


@dataclass
class _Progress:
    meta: TableMeta
    added: int = 0
    new_version: bool = False


class PostgresStore:
    """A Patterns store in a PostgreSQL database (``postgresql://user@host:port/db``)."""

    concurrent_processes = True
    name = "postgresql"

    #: (a database server: no file)
    path: Path | None = None

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only
        self.pool = Pool(url)
        self.capabilities = Capabilities(backend="postgresql", dialect="postgres",
                                         concurrent_processes=True, location=masked(url))
        con = self.pool.take()
        try:
            if read_only:
                self._check_exists(con)
            else:
                self._check_privileges(con)  # (before anything is made)
            migrate(con, url)
        finally:
            self.pool.give_back(con)
        self.ids = UlidSequence()
        #: Commits of this process take turns for the id sequence (other processes wait on
        #: the advisory lock).
        self._ids_lock = threading.Lock()

    def _check_exists(self, con: Connection) -> None:
        """A read-only store must have been made already (nothing is made for a read)."""
        row = con.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [META]).fetchone()
        con.rollback()
        if row is None:
            raise StoreError(f"no store in the PostgreSQL database {masked(self.url)}: run "
                             f"the app once with `patterns run --store URL` to create it")

    def _check_privileges(self, con: Connection) -> None:
        """Refuse, before anything is made, a user who could not make the store."""
        row = con.execute(
            "SELECT current_user, current_database(), has_schema_privilege(current_user, %s, "
            "'CREATE'), has_database_privilege(current_database(), 'CREATE') OR EXISTS "
            "(SELECT 1 FROM pg_namespace WHERE nspname = %s)", [VIEWS, META]).fetchone()
        con.rollback()
        assert row is not None
        user, database, views, schemas = row
        where = masked(self.url)
        if not schemas:
            raise StoreError(
                f"the PostgreSQL store {where}: user {user!r} may not create the store's "
                f"schemas in database {database!r}; as the database's owner run GRANT CREATE "
                f"ON DATABASE {database} TO {user}, or use a database the user owns")
        if not views:
            raise StoreError(
                f"the PostgreSQL store {where}: user {user!r} may not create the tables' "
                f"views in schema {VIEWS!r}; as the database's owner run GRANT CREATE ON "
                f"SCHEMA {VIEWS} TO {user}, or use a database the user owns")

    # ------------------------------------------------------------------ views
    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A connection of the pool, given back at the end; PostgreSQL's errors become
        the project's own."""
        con = self.pool.take()
        try:
            yield con
        except BaseException as exc:
            error = mapped(exc, self.url)
            if error is not None:
                raise error from exc
            raise
        finally:
            self.pool.give_back(con)

    @contextmanager
    def read(self) -> Iterator[PgView]:
        with self._connection() as con:
            # (psycopg has begun the transaction: this is its first statement)
            con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield PgView(con)

    @contextmanager
    def transaction(self) -> Iterator[PgView]:
        """A write transaction: committed when the block ends, rolled back on an error."""
        with self._connection() as con, con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(%s)", [COMMIT_LOCK])
            yield PgView(con)

    @contextmanager
    def archive(self, *, write: bool = False) -> Iterator[PgArchive]:
        """The store whole (``patterns store copy``): a snapshot to read, or one write
        transaction (holding the commit lock) to write."""
        from patterns.store.postgres.archive import PgArchive

        with self.transaction() if write else self.read() as view:
            yield PgArchive(view)

    @contextmanager
    def autocommit(self) -> Iterator[PgView]:
        """Each statement committed as it runs, without the commit lock."""
        with self._connection() as con:
            con.autocommit = True
            try:
                yield PgView(con)
            finally:
                con.autocommit = False

    def open_reader(self, read: Callable[[Transaction], pa.RecordBatchReader]
                    ) -> pa.RecordBatchReader:
        """The reader ``read`` makes on a read view of its own, given back once drained."""
        con = self.pool.take()
        try:
            con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            con.execute("SELECT 1")  # (the snapshot is taken now, not at the first batch)
            reader = read(PgView(con))
        except BaseException as exc:
            self.pool.give_back(con)
            error = mapped(exc, self.url)
            if error is not None:
                raise error from exc
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            finally:
                self.pool.give_back(con)

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    # ------------------------------------------------------------------ commits
    def early_writes(self, cp: Checkpoint, before: Callable[[], None]) -> EarlyWrites | None:
        """None: a checkpoint's rows are inserted when it commits (docs/store.md, "Rows
        inserted before their checkpoint commits": DuckDB only)."""
        return None

    def commit(self, cp: Checkpoint, *, timeout: float | None = None,
               stop: threading.Event | None = None,
               also: Callable[[Transaction, CommitResult], None] | None = None,
               early: EarlyWrites | None = None,
               ) -> CommitResult:
        """Apply a checkpoint in one transaction: table ops, state, positions, then
        ``also(view, result)``; :class:`CommitTimeout` past ``timeout`` or once ``stop``.
        (``early`` is always None here: :meth:`early_writes`.)"""
        import psycopg

        con = self.pool.take()
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        watch = _Watch(con, deadline, stop) if deadline is not None or stop else None
        try:
            with self._ids_lock, con.transaction():
                con.execute("SELECT pg_advisory_xact_lock(%s)", [COMMIT_LOCK])
                view = PgView(con)
                result = self._apply(view, cp, watch)
                if also is not None:
                    also(view, result)
                if watch is not None:
                    watch.check()
            return result
        except psycopg.errors.QueryCanceled as exc:
            raise CommitTimeout(f"the checkpoint was {_why(timeout, stop)}; nothing of it was "
                                f"committed") from exc
        except _Cancelled:
            raise CommitTimeout(f"the checkpoint was {_why(timeout, stop)}; nothing of it was "
                                f"committed") from None
        except PatternsError:
            raise
        except psycopg.Error as exc:
            error = mapped(exc, self.url)
            if error is not None:
                raise error from exc
            raise StoreError(f"the PostgreSQL store {masked(self.url)} refused the "
                             f"checkpoint: {' '.join(str(exc).split())}") from exc
        finally:
            if watch is not None:
                watch.end()
            self.pool.give_back(con)

    def _apply(self, view: PgView, cp: Checkpoint, watch: _Watch | None = None
               ) -> CommitResult:
        """Apply ``cp`` in ``view``'s open transaction (which holds the commit lock)."""
        cur = view.cur
        row = cur.execute(f"SELECT last_id FROM {META}.ids").fetchone()
        if row and row[0]:
            self.ids.advance_past(row[0])
        now = dt.datetime.now(dt.UTC)
        writer = PgTableWriter(cur, self.ids, now, cp.run_id, rules=cp.rules,
                               max_columns=cp.max_columns,
                               infer_timestamps=cp.infer_timestamps)
        touched: dict[str, _Progress] = {}
        for name, op in cp.sequence():
            if watch is not None:
                watch.check()
            progress = touched.get(name)
            if progress is None:
                table = view.tables.get(name)
                if table is None:
                    init = next((o.options for o in cp.ops[name] if o.kind == "init"), None)
                    table = writer.create(name, init or TableOptions())
                progress = touched[name] = _Progress(table)
            before = progress.meta.version
            progress.meta, n = writer.apply(progress.meta, op)
            progress.added += n
            progress.new_version |= progress.meta.version != before
        rows: dict[str, int] = {}
        metas: dict[str, TableMeta] = {}
        seq = None
        for name in sorted(touched):
            progress = touched[name]
            table, added = progress.meta, progress.added
            changed = bool(added) or progress.new_version
            if changed:
                if seq is None:
                    got = cur.execute(f"SELECT nextval('{META}.commit_seq')").fetchone()
                    assert got is not None
                    seq = int(got[0])
                cur.execute(f"INSERT INTO {META}.commits VALUES (%s, %s, %s, %s, %s, %s, %s, "
                            f"%s)", [seq, name, table.version, cp.run_id, cp.node_id, added,
                                     now, cp.wakes])
            if progress.new_version and cp.keep_versions:
                prune_versions(cur, table, cp.keep_versions)
            writer.save(table, seq if changed else None)
            rows[name] = added
            metas[name] = replace(table, last_commit=seq) if changed and seq else table
        if cp.state is not None:
            view.memory.set_state(cp.node_id, cp.state)
        for table_name, position in cp.positions.items():
            view.memory.set_position(cp.node_id, table_name, position)
        last = self.ids.last()
        if last is not None:
            cur.execute(f"UPDATE {META}.ids SET last_id = %s WHERE last_id IS NULL "
                        f"OR last_id < %s", [last, last])
        return CommitResult(seq=seq or 0, rows_added=rows, tables=metas)

    def with_staged(self, cp: Checkpoint, read: Callable[[Transaction], T]) -> T:
        """``read`` on a view where ``cp`` is applied; then the changes are thrown away."""
        con = self.pool.take()
        try:
            with self._ids_lock:  # (and the commit lock: staged DDL waits for no commit)
                con.execute("SELECT pg_advisory_xact_lock(%s)", [COMMIT_LOCK])
                view = PgView(con)
                self._apply(view, cp)
            return read(view)
        except BaseException as exc:
            error = mapped(exc, self.url)
            if error is not None:
                raise error from exc
            raise
        finally:
            con.rollback()
            self.pool.give_back(con)

    def last_commit(self) -> int:
        con = self.pool.take()
        try:
            row = con.execute(f"SELECT coalesce(max(seq), 0) FROM {META}.commits").fetchone()
            return int(row[0]) if row else 0  # type: ignore[call-overload]
        finally:
            self.pool.give_back(con)

    def view_name(self, table: str) -> str:
        return view(table)

    def close(self) -> None:
        self.pool.close()

    # ------------------------------------------------------------------ conveniences
    def table(self, name: str) -> TableMeta | None:
        with self.read() as v:
            return v.tables.get(name)

    def memory(self, node_id: str) -> tuple[dict[str, Any], dict[str, StreamPosition]]:
        """(Read each time: other engines of the store commit too.)"""
        with self.read() as v:
            return v.memory.memory(node_id)

    def reset_table(self, name: str, run_id: str | None = None,
                    keep_versions: int | None = None) -> TableMeta:
        cp = Checkpoint(run_id=run_id or "cli", node_id="cli",
                        ops={name: [TableOp("reset")]}, keep_versions=keep_versions)
        return self.commit(cp).tables[name]

    def physical(self, meta: TableMeta) -> str:
        return qualified(meta.physical)


def _why(timeout: float | None, stop: threading.Event | None) -> str:
    if stop is not None and stop.is_set():
        return "asked to stop"
    return f"stopped after {timeout:g} s" if timeout is not None else "interrupted"


class _Cancelled(Exception):
    """The commit passed its deadline between statements."""


class _Watch:
    """Cancels a commit's running statement on the server when its deadline passes or its
    ``stop`` is set (checked every 50 ms by a thread of its own)."""

    PERIOD = 0.05

    def __init__(self, con: Connection, deadline: float | None,
                 stop: threading.Event | None) -> None:
        self.con = con
        self.deadline = deadline
        self.stop = stop
        self._ended = threading.Event()
        self._lock = threading.Lock()
        self.fired = False
        threading.Thread(target=self._loop, name="patterns-pg-commit-watch", daemon=True
                         ).start()

    def due(self) -> bool:
        return (self.stop is not None and self.stop.is_set()) or \
            (self.deadline is not None and time.monotonic() >= self.deadline)

    def check(self) -> None:
        if self.fired or self.due():
            raise _Cancelled

    def _loop(self) -> None:
        import psycopg

        while not self._ended.wait(self.PERIOD):
            with self._lock:  # (never once the commit has ended: the connection moves on)
                if self._ended.is_set() or not self.due():
                    continue
                self.fired = True
                with contextlib.suppress(psycopg.Error):
                    self.con.cancel_safe(timeout=5)
                return

    def end(self) -> None:
        with self._lock:
            self._ended.set()


if TYPE_CHECKING:
    from patterns.store.interface import Store

    def _conforms(store: PostgresStore, view: PgView) -> tuple[Store, Transaction]:
        """(mypy checks that the store and its views are what the interface asks)"""
        return store, view
