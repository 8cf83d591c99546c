"""The embedded store: one DuckDB file holding the app's tables and the platform metadata.

The engine is the single writer. Every checkpoint is one DuckDB transaction taken under
:attr:`DuckDBStore.commit_lock`, which is also what makes ``patterns_id`` grow in commit
order. Readers use their own cursors and see committed data only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from patterns import private_files
from patterns.errors import DiskFullError, StoreBusyError, StoreError
from patterns.store import faults
from patterns.store import meta as metadata
from patterns.store.columns import Column
from patterns.store.ids import UlidSequence
from patterns.store.migrations import DATA, META, MIGRATIONS
from patterns.store.model import Checkpoint, CommitResult, TableMeta, TableOptions
from patterns.store.tables import TableWriter, prune_versions, q, qualified

T = TypeVar("T")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CommitTimeout(StoreError):
    """A checkpoint's statements ran past the time they were given; nothing was committed."""


@dataclass
class _Progress:
    """One table within a commit: its metadata so far, rows added, whether it has a new
    version."""

    meta: TableMeta
    added: int = 0
    new_version: bool = False


class _Watchdog:
    """Interrupts the statements of commits that pass their deadline or are asked to stop.

    One thread for the whole store, checking every 50 ms while any commit is watched (most
    commits take a few milliseconds: a thread of their own would cost more than they do)."""

    PERIOD = 0.05

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[duckdb.DuckDBPyConnection, float | None,
                                       threading.Event | None]] = {}
        self._keys = itertools.count()
        self._running = False

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

    def _loop(self) -> None:
        while True:
            time.sleep(self.PERIOD)
            now = time.monotonic()
            with self._lock:
                if not self._watched:
                    self._running = False
                    return
                due = [key for key, (_, deadline, stop) in self._watched.items()
                       if (stop is not None and stop.is_set())
                       or (deadline is not None and now >= deadline)]
                for key in due:  # interrupted once; the commit then rolls back
                    cur = self._watched.pop(key)[0]
                    with contextlib.suppress(duckdb.Error):
                        cur.interrupt()


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

    #: Capability flags: what differs between backends.
    concurrent_processes = False  # one process may hold the file open for writing
    name = "duckdb"

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise StoreError(f"no store at {self.path}: run the app once with `patterns run` "
                             f"to create it")
        if self.path.parent.name == ".patterns":  # (an app's own folder: private)
            private_files.private_dir(self.path.parent)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        #: DuckDB's write-ahead log, beside the store (made private after each write).
        self.wal = self.path.with_name(self.path.name + ".wal")
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
            self._con.execute("SET GLOBAL TimeZone = 'UTC'")
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreBusyError(
                    f"the store {self.path} is open in another process (a `duckdb` shell, "
                    f"a notebook's read-only view?); close it, or wait for it to finish"
                ) from exc
            raise StoreError(f"cannot open the store {self.path}: {exc}") from exc
        self.commit_lock = threading.RLock()
        self._watchdog = _Watchdog()
        #: Each table's facts as the last commit left them (see :meth:`commit`).
        self._committed_tables: dict[str, TableMeta] = {}
        if not read_only:
            self._migrate()
            self.keep_private()
        self._last_seq = 0
        if self.path.exists():
            with contextlib.suppress(duckdb.Error):  # a store made before migration 1
                self._last_seq = int(self._con.execute(
                    f"SELECT coalesce(max(seq), 0) FROM {META}.commits").fetchall()[0][0])
        self.ids = UlidSequence()
        for (last_id,) in self._con.execute(
                f"SELECT last_id FROM {META}.tables WHERE last_id IS NOT NULL").fetchall():
            self.ids.advance_past(last_id)

    # ------------------------------------------------------------------ connection
    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    def close(self) -> None:
        self._con.close()
        if not self.read_only:
            self.keep_private()

    def keep_private(self) -> None:
        """The store file and its write-ahead log readable by their owner only. DuckDB
        makes the log itself (with the process's umask) at the first write after each
        checkpoint: every write transaction checks it when it commits (one ``stat``)."""
        private_files.keep_private(self.path)
        private_files.keep_private(self.wal)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction. Write transactions take turns (the commit lock): DuckDB would
        otherwise fail one of two that touch the same rows."""
        with self.commit_lock:
            cur = self.cursor()
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
            cur.close()
            private_files.keep_private(self.wal)

    def _migrate(self) -> None:
        cur = self.cursor()
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {META}")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {META}.migrations "
                    f"(version INTEGER, name VARCHAR, applied_at TIMESTAMPTZ)")
        done = {v for (v,) in cur.execute(f"SELECT version FROM {META}.migrations").fetchall()}
        for version, name, statements in MIGRATIONS:
            if version in done:
                continue
            with self.transaction() as tx:
                for sql in statements:
                    tx.execute(sql)
                tx.execute(f"INSERT INTO {META}.migrations VALUES (?, ?, ?)",
                           [version, name, utcnow()])

    # ------------------------------------------------------------------ tables
    def table(self, name: str, cur: duckdb.DuckDBPyConnection | None = None) -> TableMeta | None:
        if cur is None:
            with self.cursor() as own:
                return self.table(name, own)
        rows = cur.execute(
            f"SELECT name, version, physical, columns, id_column, created_column, unique_on, "
            f"last_id, last_commit, options FROM {META}.tables WHERE name = ?", [name]).fetchall()
        if not rows:
            return None
        name, version, physical, columns, id_col, created, unique, last_id, last, opts = rows[0]
        return TableMeta(
            name=name, version=version, physical=physical,
            columns=tuple(Column(c["name"], c["kind"]) for c in json.loads(columns)),
            id_column=id_col, created_column=created,
            unique_on=tuple(json.loads(unique)) if unique else None,
            last_id=last_id, last_commit=last,
            options=TableOptions.from_json(json.loads(opts)) if opts else TableOptions(),
        )

    def tables(self) -> list[TableMeta]:
        cur = self.cursor()
        names = [n for (n,) in cur.execute(f"SELECT name FROM {META}.tables ORDER BY name")
                 .fetchall()]
        return [m for m in (self.table(n, cur) for n in names) if m is not None]

    def versions(self, name: str) -> list[dict[str, Any]]:
        rows = self.cursor().execute(
            f"SELECT version, physical, created_at, run_id, reason FROM {META}.table_versions "
            f"WHERE name = ? ORDER BY version", [name]).fetchall()
        live = {p for (p,) in self.cursor().execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            [DATA]).fetchall()}
        return [{"version": v, "physical": p, "created_at": c, "run_id": r, "reason": why,
                 "available": p in live} for v, p, c, r, why in rows]

    def count(self, meta: TableMeta, cur: duckdb.DuckDBPyConnection | None = None) -> int:
        if cur is None:
            with self.cursor() as own:
                return self.count(meta, own)
        row = cur.execute(f"SELECT count(*) FROM {qualified(meta.physical)}").fetchall()
        return int(row[0][0])

    # ------------------------------------------------------------------ commits
    def commit(self, cp: Checkpoint, *, timeout: float | None = None,
               stop: threading.Event | None = None,
               also: Callable[[duckdb.DuckDBPyConnection, CommitResult], None] | None = None,
               ) -> CommitResult:
        """Apply a checkpoint in one transaction: table ops, state, stream positions; then
        ``also(cursor, result)``, in the same transaction (the engine records a run's end
        with its final checkpoint).

        With ``timeout`` (seconds), or when ``stop`` is set, statements still running are
        interrupted and the transaction rolls back (:class:`CommitTimeout`)."""
        with self.commit_lock:
            try:
                with self.transaction() as cur:
                    watch = None
                    if timeout is not None or stop is not None:
                        deadline = None if timeout is None else \
                            time.monotonic() + max(timeout, 0.0)
                        watch = self._watchdog.watch(cur, deadline, stop)
                    try:
                        faults.point("commit.begin")
                        result = self._apply(cur, cp, cached=True)
                        if also is not None:
                            also(cur, result)
                        faults.point("commit.end")
                    except duckdb.InterruptException as exc:
                        why = ("asked to stop" if stop is not None and stop.is_set() else
                               f"stopped after {timeout:g} s" if timeout is not None else
                               "interrupted")
                        raise CommitTimeout(f"the checkpoint was {why}") from exc
                    finally:
                        if watch is not None:
                            self._watchdog.unwatch(watch)
            except BaseException:
                self._committed_tables.clear()  # not sure what the store holds: read it again
                raise
            # Committed: these are now the tables' facts, for the next commit to start from.
            self._committed_tables.update(result.tables)
            self._last_seq = max(self._last_seq, result.seq)
            return result

    def last_commit(self) -> int:
        """The number of the newest commit (0: none yet). Kept in memory: only this store's
        commits add one."""
        return self._last_seq

    def _apply(self, cur: duckdb.DuckDBPyConnection, cp: Checkpoint,
               cached: bool = False) -> CommitResult:
        """Apply ``cp`` in the open transaction of ``cur``. With ``cached``, a table's facts
        come from the last commit (this store is the only writer of its tables) instead of a
        query."""
        now = utcnow()
        writer = TableWriter(cur, self.ids, now, cp.run_id, rules=cp.rules,
                             max_columns=cp.max_columns, infer_timestamps=cp.infer_timestamps)
        touched: dict[str, _Progress] = {}
        for name, op in cp.sequence():  # in staging order: a statement sees earlier ops
            progress = touched.get(name)
            if progress is None:
                table = self._committed_tables.get(name) if cached else None
                if table is None:
                    table = self.table(name, cur)
                if table is None:
                    init = next((o.options for o in cp.ops[name] if o.kind == "init"), None)
                    table = writer.create(name, init or TableOptions())
                progress = touched[name] = _Progress(table)
            before = progress.meta.version
            progress.meta, n = writer.apply(progress.meta, op)
            faults.point(f"commit.{op.kind}")
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
                facts = [name, table.version, cp.run_id, cp.node_id, added, now, cp.wakes]
                if seq is None:  # the commit's number, drawn by its first commit record
                    seq = int(cur.execute(
                        f"INSERT INTO {META}.commits SELECT nextval('{META}.commit_seq'), ?, "
                        f"?, ?, ?, ?, ?, ? RETURNING seq", facts).fetchall()[0][0])
                else:
                    cur.execute(f"INSERT INTO {META}.commits VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                [seq, *facts])
            if progress.new_version and cp.keep_versions:
                prune_versions(cur, table, cp.keep_versions)
            writer.save(table, seq if changed else None)
            rows[name] = added
            metas[name] = replace(table, last_commit=seq) if changed and seq else table
        if cp.state is not None:
            metadata.set_state(cur, cp.node_id, cp.state, now)
        for table_name, position in cp.positions.items():
            metadata.set_position(cur, cp.node_id, table_name, position, now)
        return CommitResult(seq=seq or 0, rows_added=rows, tables=metas)

    def with_staged(self, cp: Checkpoint, read: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``read`` on a view where ``cp`` is applied, then throw the changes away.

        This is how a run reads its own uncommitted writes.
        """
        with self.commit_lock:
            cur = self.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                self._apply(cur, cp)
                return read(cur)
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

    def reset_table(self, name: str, run_id: str | None = None,
                    keep_versions: int | None = None) -> TableMeta:
        from patterns.store.model import TableOp

        cp = Checkpoint(run_id=run_id or "cli", node_id="cli",
                        ops={name: [TableOp("reset")]}, keep_versions=keep_versions)
        return self.commit(cp).tables[name]

    def delete_rows(self, name: str, where: str, keep_versions: int | None = None
                    ) -> TableMeta:
        """A new version of table ``name`` without the rows the SQL condition ``where``
        holds for (see :mod:`patterns.store.repair`)."""
        from patterns.store.model import TableOp

        cp = Checkpoint(run_id="cli", node_id="cli", keep_versions=keep_versions,
                        ops={name: [TableOp("delete", where=where)]})
        return self.commit(cp).tables[name]

    def alter_column(self, name: str, column: str, type_name: str,
                     keep_versions: int | None = None) -> TableMeta:
        """A new version of table ``name`` whose ``column`` holds ``type_name`` values."""
        from patterns.store.model import TableOp

        cp = Checkpoint(run_id="cli", node_id="cli", keep_versions=keep_versions,
                        ops={name: [TableOp("alter", alter=(column, type_name))]})
        return self.commit(cp).tables[name]

    def view_name(self, name: str) -> str:
        return f"main.{q(name)}"
