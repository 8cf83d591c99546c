"""A run as the engine sees it while it is in flight: what it may touch and what it staged.

Nothing a run writes is committed before a checkpoint: writes are staged here as Arrow
tables, state and stream positions arrive with the checkpoint itself, and
:meth:`RunSession.checkpoint` commits all of it in one store transaction. A run that dies
simply leaves its staging behind. (A store may insert staged appends ahead, into the
transaction the checkpoint then commits: :meth:`Store.early_writes`, docs/store.md.)
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from patterns.engine.external_reads import ExternalReads
from patterns.engine.list_marks import ListMarks
from patterns.engine.read_through import ReadThrough
from patterns.engine.run_start import StartRecord
from patterns.engine.storages import ExternalTable
from patterns.engine.store_rules import named_schema
from patterns.errors import AtOnce, EngineError, NodeError, QueryError
from patterns.graph.model import Node
from patterns.positions import StreamPosition
from patterns.store.interface import EarlyWrites, Store, Transaction
from patterns.store.model import (
    Checkpoint,
    CommitResult,
    RunRecord,
    StoreRules,
    TableMeta,
    TableOp,
    TableOptions,
)
from patterns.store.reads import BATCH_ROWS, next_pass, pass_is_empty
from patterns.store.tables import BIG_CHUNK_ROWS, check_fits, table_rules

if TYPE_CHECKING:
    from patterns.store.conform import Rules

_WRITE_OPS = ("append", "upsert", "replace", "truncate", "reset")


@dataclass
class Requests:
    """What a run asked the engine for besides data."""

    new_run: bool = False
    trigger_downstream: bool = True
    wait_seconds: float | None = None
    error: str | None = None
    traceback: str | None = None


@dataclass
class RunSession:
    run_id: str
    node: Node
    store: Store
    parameters: Mapping[str, Any]
    time_limit_seconds: float
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    started_at: float = field(default_factory=time.time)
    requests: Requests = field(default_factory=Requests)
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_written: dict[str, int] = field(default_factory=dict)
    #: Rows sent to tables so far, committed or staged (what a live display shows).
    rows_sent: int = 0
    checkpoints: int = 0
    finished: bool = False
    #: Answers a response webhook's request (set by the server; None in ``patterns run``).
    responder: Callable[[str, Any], None] | None = None
    #: Set to stop the run's commit in progress (cancelling a SQL node, which has no process).
    stop: threading.Event = field(default_factory=threading.Event)
    #: Called in the transaction of the run's final checkpoint, ``at_final(tx, result)``
    #: (the engine records the run's end there); what it returns is kept in :attr:`ended`
    #: once that transaction has committed.
    at_final: Callable[[Transaction, CommitResult], tuple[RunRecord, str]] | None = None
    ended: tuple[RunRecord, str] | None = None
    #: Called after each of the run's commits that added rows (once that transaction has
    #: committed): the server's scheduler starts the readers then, not at the run's end.
    on_commit: Callable[[], None] | None = None
    #: Run in each checkpoint's commit transaction before anything else it does: raises
    #: (and the commit is rolled back) once the engine no longer holds the node's lease.
    fence: Callable[[Transaction], None] | None = None
    #: The run's start record (patterns/engine/run_start.py): before a checkpoint, it is
    #: written, or left to the final one; None: nothing to wait for.
    start_recorded: StartRecord | None = None
    #: The run is over (:meth:`close`): nothing more is staged or committed.
    closed: bool = False
    #: graph.yml's rules of the app's tables (contracts, schemas) and settings.max_columns.
    rules: Mapping[str, StoreRules] = field(default_factory=dict)
    #: The app (its stores and named schemas); None: every port counts as connected.
    app: Any = None
    #: The node's tables that live in an outside database (read-only), by store name.
    external: Mapping[str, ExternalTable] = field(default_factory=dict)
    _staged: Checkpoint | None = None
    #: Per table written since the last checkpoint: its columns once the staged writes
    #: apply (field → kind), so a value that does not fit is refused when it is staged.
    _columns: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Per table, what was staged for it when the node began shipping a long list in
    #: parts (:mod:`patterns.engine.list_marks`).
    _marks: ListMarks = field(default_factory=ListMarks)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: The staged appends the store has inserted ahead of the checkpoint's commit (see
    #: :meth:`Store.early_writes`); None: none yet, or the store does not.
    _early: EarlyWrites | None = None
    #: The commit the run started after: its inputs count as read up to it at least.
    seen_commit: int = 0

    def __post_init__(self) -> None:
        self.ports: dict[str, tuple[str, str]] = {
            t.port: (self.node.store_for(t.port), t.mode) for t in self.node.interface.tables}
        self.outside = ExternalReads(self.run_id, self.external, self.rows_read)
        #: How far the run read its inputs (what its end records as ``seen_commit``).
        self.read_through = ReadThrough(self.seen_commit)
        #: Per input, as the checkpoint in progress leaves it (None: none in progress).
        self._covering: dict[str, int] | None = None

    def read_commit(self, result: CommitResult | None = None) -> int:
        """The commit up to which the run read every one of its inputs (see
        :mod:`patterns.engine.read_through`); ``result``: of the final checkpoint, in its
        transaction (a SQL node read its inputs there, after every commit before its own)."""
        if self.node.kind == "sql" and result is not None:
            return max(self.seen_commit, result.seq, self.store.last_commit())
        return self.read_through.commit(self.node.reads(), self._covering)

    # ------------------------------------------------------------------ access
    def store_for(self, port: str, mode: str) -> str:
        bound = self.ports.get(port)
        if bound is None:
            declared = ", ".join(sorted(self.ports)) or "none"
            raise NodeError(f"node {self.node.rel_file} did not declare table {port!r} "
                            f"(declared: {declared}); access refused")
        store, declared_mode = bound
        if mode == "w" and declared_mode != "w":
            raise NodeError(f"node {self.node.rel_file} declared table {port!r} read-only; "
                            f"write refused. Declare it with Table({port!r}, \"w\")")
        if mode == "w" and store in self.external:
            self.outside.refuse_write(self.node.label, store)
        return store

    def connected(self, store: str) -> bool:
        """Whether ``store`` is one of the app's stores (a port bound to none: writes to it
        are no-ops, as in the original)."""
        return self.app is None or any(s.name == store for s in self.app.stores)

    def _staging(self) -> Checkpoint:
        if self._staged is None:
            self._staged = Checkpoint(run_id=self.run_id, node_id=self.node.id,
                                      keep_versions=self.node.settings.keep_versions,
                                      rules=self.rules,
                                      max_columns=self.node.settings.max_columns)
            self._columns = {}
            self._marks = ListMarks()
        return self._staged

    def staged_for(self, store: str) -> bool:
        cp = self._staged
        return cp is not None and store in cp.ops

    # ------------------------------------------------------------------ info
    def run_info(self) -> dict[str, Any]:
        state, positions = self.store.memory(self.node.id)
        store_to_port = {store: port for port, (store, _) in self.ports.items()}
        return {
            "run_id": self.run_id,
            "node_id": self.node.id,
            "node_file": self.node.rel_file or self.node.id,
            "ports": {p: {"store": s, "mode": m, "connected": self.connected(s)}
                      for p, (s, m) in self.ports.items()},
            "state": state,
            "positions": {store_to_port[s]: pos.to_json() for s, pos in positions.items()
                          if s in store_to_port},
            "time_limit_seconds": self.time_limit_seconds,
            "started_at": self.started_at,
            "checkpoint_seconds": self.node.settings.checkpoint_seconds,
        }

    def table_info(self, port: str) -> dict[str, Any]:
        store = self.store_for(port, "r")
        if store in self.external:
            return self.outside.info(store, self.store.view_name(store))

        def info(view: Transaction) -> dict[str, Any]:
            meta = view.tables.get(store)
            if meta is None:
                return {"exists": False, "version": 0, "record_count": 0, "schema": None,
                        "sql_name": self.store.view_name(store), "last_id": None}
            count = view.tables.count(meta)
            return {"exists": count > 0 or not _reset_since_write(view, meta),
                    "version": meta.version,
                    "record_count": count, "schema": meta.schema_doc(),
                    "sql_name": self.store.view_name(store), "last_id": meta.last_id}

        if self.staged_for(store):
            return dict(self._with_staged(info))
        with self.store.read() as view:
            return info(view)

    # ------------------------------------------------------------------ writes
    def stage(self, port: str, op: str, data: pa.Table | None, unique_on: list[str] | None,
              options: Mapping[str, Any] | None, *, token: str | None = None) -> None:
        """``token``: the one the request carried (checked here, under the lock: see
        :meth:`revoke`)."""
        store = self.store_for(port, "w")
        with self._lock:
            self._open(token)
            cp = self._staging()
            if op == "init":
                opts = TableOptions.from_json(named_schema(self.app, store, options or {}))
                cp.add(store, TableOp("init", options=opts))
                return
            if op == "mark":
                if self._rules(store, self._table(store)).contract == "variant":
                    raise AtOnce(f"table {store!r}: contract variant: a list goes at once")
                self._marks.mark(cp, store, self._columns.get(store))
                return
            if op == "cut":
                self._cut(store)
                return
            if op == "keep":
                self._marks.keep(store)
                return
            if op not in _WRITE_OPS:
                raise NodeError(f"unknown table operation {op!r}")
            if op == "reset":
                self._columns[store] = {}
            if data is not None and op in ("append", "upsert", "replace"):
                data = self._conformed(store, op, data)
                self.rows_sent += data.num_rows
            ops = cp.ops.setdefault(store, [])
            keys = tuple(unique_on) if unique_on else None
            if op == "append" and ops and ops[-1].kind == "append" and data is not None:
                merged = _merge(ops[-1].data, data)
                if merged is not None:
                    ops[-1] = TableOp("append", merged)
                    self._insert_early(cp, store)
                    return
            cp.add(store, TableOp(op, data, keys))  # type: ignore[arg-type]
            if op == "append":
                self._insert_early(cp, store)

    def _insert_early(self, cp: Checkpoint, store: str) -> None:
        """Let the store insert what it can of the staged appends now, while the node goes
        on (the commit then has less to do). The run's start record is written first:
        the early rows' transaction must not miss it. Only once ``store``'s first staged
        op is an append of a row group or more (what a store inserts ahead): a run of a
        few rows costs nothing more."""
        ops = cp.ops.get(store)
        first = ops[0] if ops else None
        if first is None or first.kind != "append" or first.data is None \
                or first.data.num_rows < BIG_CHUNK_ROWS:
            return
        if self._early is None:
            self._early = self.store.early_writes(cp, self._before_early)
        if self._early is not None:
            self._early.advance()

    def _before_early(self) -> None:
        if self.start_recorded is not None:
            self.start_recorded.before_shown()

    def _drop_early(self) -> None:
        early, self._early = self._early, None
        if early is not None:
            early.close()

    def _cut(self, store: str) -> None:
        """(Under the lock.) Take back what was staged for ``store`` since its ``mark``
        (:mod:`patterns.engine.list_marks`): nothing of the list stays staged."""
        rows, columns = self._marks.cut(self._staging(), store)
        self.rows_sent -= rows
        if columns is None:
            self._columns.pop(store, None)
        else:
            self._columns[store] = columns
        self._drop_early()  # (it may hold rows taken back: the next write begins anew)

    def _rules(self, store: str, meta: TableMeta | None) -> Rules:
        """What rows staged for ``store`` must obey: its options as the staged ``init`` s
        leave them, graph.yml's rules of it, the node's column limit."""
        options = next((o.options for o in reversed(self._staging().ops.get(store, []))
                        if o.kind == "init" and o.options is not None), None)
        if options is None:
            options = (meta or self._table(store) or _NO_TABLE).options
        return table_rules(store, options, self.rules.get(store),
                           self.node.settings.max_columns)

    def _conformed(self, store: str, op: str, data: pa.Table) -> pa.Table:
        """``data`` made to fit the table as the run's staged writes leave it, or refused
        (a NodeError naming the record, which the node names by its file and line)."""
        from patterns.store.conform import conform, project

        # A part of a list is checked against the columns as they were before the list,
        # as the whole list would be: not as an earlier part widened them (an int column
        # its first part made float would take a NaN the whole list is refused for).
        marked = op == "append" and self._marks.marked(store)
        columns = self._marks.columns(store) if marked else self._columns.get(store)
        meta = self._table(store) if columns is None or op == "replace" else None
        rules = self._rules(store, meta)
        if op == "replace" or columns is None:
            columns = meta.kinds() if meta is not None and op != "replace" else {}
        data = conform(store, columns, data, rules)
        check_fits(store, columns, data)
        staged = self._columns.get(store) if marked else None
        self._columns[store] = project(columns if staged is None else staged, data, rules)
        return data

    def rollback(self, *, token: str | None = None) -> None:
        with self._lock:
            self._current(token)  # (a lost process's: the run's new staging is not its)
            self._staged = None
            self._drop_early()

    def close(self) -> None:
        """The run is over: what it staged after its last checkpoint is dropped, and a
        request still on its way (a checkpoint sent just before the process was killed)
        changes nothing any more."""
        with self._lock:
            self._staged = None
            self._drop_early()
            self.closed = True

    def revoke(self) -> None:
        """The run's process was lost (:mod:`patterns.engine.relaunch`): the run gets a new
        token and what it staged is dropped, at once, once a commit under way has landed
        (or not). A request of the lost process still on its way, its token looked up
        before, then stages and commits nothing."""
        with self._lock:
            self._staged = None
            self._drop_early()
            self.token = secrets.token_urlsafe(24)

    def note(self, token: str | None, change: Callable[[Requests], None]) -> None:
        """``change`` the run's requests (a new run, an error) for a request that carried
        ``token``: refused once the token is revoked, so a lost process's late request
        does not reach the run that started again."""
        with self._lock:
            self._current(token)
            change(self.requests)

    def renew_requests(self) -> None:
        """The run starts again (:mod:`patterns.engine.relaunch`): nothing the lost process
        asked for stands."""
        with self._lock:
            self.requests = Requests()

    def _open(self, token: str | None = None) -> None:
        if self.closed:
            raise EngineError("the run is over: its process was stopped; nothing more is "
                              "committed")
        self._current(token)

    def _current(self, token: str | None) -> None:
        """Refuse a request whose ``token`` was revoked (None: a request that carried none)."""
        if token is not None and token != self.token:
            raise EngineError("this run's token was revoked (its process was lost and the "
                              "run started again elsewhere); nothing of this request is "
                              "committed")

    def stage_sql(self, ops: list[tuple[str, TableOp]], *, token: str | None = None) -> None:
        """Stage SQL statements (checked by :mod:`patterns.engine.sql_nodes`) in order."""
        with self._lock:
            self._open(token)
            cp = self._staging()
            for store, op in ops:
                cp.add(store, op)

    def execute_sql(self, port: str, sql: str, *, token: str | None = None) -> None:
        """``table.execute_sql``: stage statements that change ``port``'s table, after
        trying them on the run's staged writes, so an error points at the call."""
        from patterns.engine.sql_nodes import plan_execute_sql

        store = self.store_for(port, "w")
        ops = plan_execute_sql(self, store, sql)
        with self._lock:
            trial = self._staging().snapshot()
            for target, op in ops:
                trial.add(target, op)
            self.store.with_staged(trial, lambda view: None)
        self.stage_sql(ops, token=token)

    def checkpoint(self, state: Mapping[str, Any] | None,
                   positions: Mapping[str, Mapping[str, Any] | None], *,
                   timeout: float | None = None, final: bool = False,
                   token: str | None = None) -> None:
        """Commit what the run staged, with its state and positions. The run's ``final``
        checkpoint also records the run's end, in the same transaction (:attr:`at_final`).
        ``token``: the one the request carried (see :meth:`revoke`)."""
        with self._lock:
            self._open(token)
            # The run's record is written before any of its commits, or inserted whole by
            # the final one (which ends the run).
            start = self.start_recorded
            if start is not None:
                start.before_checkpoint(final)
            cp = self._staging()
            cp.wakes = self.requests.trigger_downstream
            cp.state = dict(state) if state is not None else None
            cp.positions = {}
            for port, pos in positions.items():
                store = self.store_for(port, "r")
                cp.positions[store] = StreamPosition.from_json(pos) if pos is not None else None
            self._covering = covering = self.read_through.after(cp.positions)
            at_final = self.at_final if final else None
            ended: list[tuple[RunRecord, str]] = []
            fence = self.fence

            def also(tx: Transaction, result: CommitResult) -> None:
                if fence is not None:
                    fence(tx)
                if at_final is not None:
                    ended.append(at_final(tx, result))

            early, self._early = self._early, None  # (the commit uses it or throws it away)
            try:
                result = self.store.commit(
                    cp, timeout=timeout, stop=self.stop,
                    also=None if at_final is None and fence is None else also, early=early)
            except BaseException:
                if final and start is not None:
                    start.after_failed_final()  # the run goes on: it shows as running
                raise
            finally:
                self._covering = None
            self.read_through.committed(covering)
            self._staged = None
            self.checkpoints += 1
            if final:
                self.finished = True
                if ended:
                    self.ended = ended[0]
            for store, n in result.rows_added.items():
                self.rows_written[store] = self.rows_written.get(store, 0) + n
            if self.on_commit is not None and any(result.rows_added.values()):
                self.on_commit()

    # ------------------------------------------------------------------ reads
    def _table(self, store: str) -> TableMeta | None:
        return self.store.table(store)

    def _with_staged(self, read: Callable[[Transaction], Any]) -> Any:
        cp = self._staged
        assert cp is not None
        return self.store.with_staged(cp.snapshot(), read)

    def read(self, port: str) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        store = self.store_for(port, "r")
        if store in self.external:
            return self.outside.read(store)
        if self.staged_for(store):
            def scan(view: Transaction) -> tuple[TableMeta | None, pa.Table | None]:
                meta = view.tables.get(store)
                return meta, (view.scan(meta).read_all() if meta else None)

            meta, table = self._with_staged(scan)
            if meta is None or table is None:
                return _empty()
            return self._counted(store, meta, iter(table.to_batches(BATCH_ROWS)), table.schema)
        meta = self._table(store)
        if meta is None:
            return _empty()
        return self._reader(store, meta, lambda view: view.scan(meta))

    def stream(self, port: str, position: Mapping[str, Any] | None, order_by: str | None,
               starting_value: Any, *, count: bool = True,
               ) -> tuple[dict[str, Any], pa.Schema, Iterator[pa.RecordBatch]]:
        """The next rows of ``port``'s stream from ``position`` (a position's JSON), and the
        position of the pass they belong to (as JSON, ``empty`` when there are none).
        ``count``: the rows read count as the run's (False: a pass read ahead of the node's
        asking, counted when the node takes it: patterns.engine.stream_prefetch)."""
        store = self.store_for(port, "r")
        if store in self.external:
            return self.outside.stream(store, position, order_by, starting_value)
        # (before the table's facts: every row of this commit, and those before it, is in
        # them; the pass read through it if it finds nothing new)
        seq = self.store.last_commit()
        meta = self._table(store)
        if meta is None:
            self.read_through.stream_ended(store, seq, None)
            return {"empty": True}, *_empty()
        pos = next_pass(meta, StreamPosition.from_json(position) if position else None,
                        order_by, starting_value)
        if pass_is_empty(pos):
            self.read_through.stream_ended(store, seq, pos.finished())
            return {**pos.finished().to_json(), "empty": True}, *_empty()
        return pos.to_json(), *self._reader(store, meta, lambda view: view.stream(meta, pos),
                                            count=count)

    def read_sql(self, sql: str, params: list[Any] | None) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """One read-only query over the node's declared tables, translated from the node's
        dialect; it sees the run's staged writes."""
        from patterns.engine.sql_nodes import read_query

        query, integer_division = read_query(self, sql)
        relations = self.outside.relations(s for s, _ in self.ports.values())
        try:
            stores = {s for s, _ in self.ports.values()}
            if any(self.staged_for(s) for s in stores):
                table: pa.Table = self._with_staged(lambda view: view.query(
                    query, params, integer_division=integer_division,
                    relations=relations).read_all())
                return table.schema, iter(table.to_batches(BATCH_ROWS))
            reader = self.store.open_reader(lambda view: view.query(
                query, params, integer_division=integer_division, relations=relations))
        except QueryError as exc:
            raise NodeError(f"read_sql in {self.node.rel_file} failed: {exc}") from exc
        return reader.schema, iter(reader)

    def _reader(self, store: str, meta: TableMeta,
                read: Callable[[Transaction], pa.RecordBatchReader], *, count: bool = True,
                ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        try:
            reader = self.store.open_reader(read)
        except QueryError as exc:
            raise NodeError(f"reading table {store!r} failed: {exc}") from exc
        return self._counted(store, meta, iter(reader), reader.schema, count=count)

    def _counted(self, store: str, meta: TableMeta, batches: Iterator[pa.RecordBatch],
                 schema: pa.Schema, *, count: bool = True,
                 ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        schema = schema.with_metadata({
            b"patterns.json_columns": ",".join(meta.json_columns()).encode(),
            b"patterns.id_column": meta.physical_id.encode(),
        })

        def counted() -> Iterator[pa.RecordBatch]:
            for batch in batches:
                if count:
                    self.rows_read[store] = self.rows_read.get(store, 0) + batch.num_rows
                yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)

        return schema, counted()



def _reset_since_write(view: Transaction, meta: TableMeta) -> bool:
    """The table's current version was made by ``reset()`` (and is empty): it does not exist
    again until a write, as in the original."""
    return any(v.version == meta.version and v.reason == "reset"
               for v in view.tables.versions(meta.name))


_NO_TABLE = TableMeta(name="", version=0, physical="", columns=(), id_column=None,
                      created_column=None, unique_on=None, last_id=None, last_commit=0)


def _merge(last: pa.Table | None, data: pa.Table) -> pa.Table | None:
    """One staged table for consecutive appends, when their columns can share types."""
    if last is None:
        return None
    if last.schema.equals(data.schema, check_metadata=True):
        return _compact_tail(pa.concat_tables([last, data]))
    left = {f.name: f.metadata for f in last.schema}
    if any(left.get(f.name, f.metadata) != f.metadata for f in data.schema):
        return None  # a JSON-text column next to plain text: keep them apart
    try:
        return _compact_tail(pa.concat_tables([last, data], promote_options="permissive"))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None  # applied as separate appends: the column widens at commit


def _compact_tail(table: pa.Table) -> pa.Table:
    """Combine the small chunks at the end of ``table`` (a node's flushes) into one, while
    the run goes on, so the commit inserts big chunks (see ``BIG_CHUNK_ROWS``) without
    combining them then. They are combined once they add up to a big chunk: each row is
    copied once."""
    if not table.num_columns:
        return table
    sizes = [len(c) for c in table.column(0).chunks]
    k = len(sizes)
    while k > 0 and sizes[k - 1] < BIG_CHUNK_ROWS:
        k -= 1
    if len(sizes) - k < 2 or sum(sizes[k:]) < BIG_CHUNK_ROWS:
        return table  # (the commit combines a small tail that is left)
    start = sum(sizes[:k])
    if not start:
        return table.combine_chunks()
    return pa.concat_tables([table.slice(0, start), table.slice(start).combine_chunks()])


def _empty() -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    return pa.schema([]), iter(())

