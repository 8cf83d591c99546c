"""What the engine, the server and the CLI may ask of a store, whatever its backend.

A :class:`Store` hands out :class:`Transaction` views (a write transaction, or a read view of
committed data). A view's typed repositories (``runs``, ``queue``, ``schedules``,
``webhooks``, ``logs``, ``memory``, ``commits``, ``tables``, ``leases``) are the only way to the platform's
own metadata; table data comes back as Arrow. Backend errors come back as the project's own
(:mod:`patterns.errors`). ``tests/store/contract`` is the definition of a backend: every
backend passes it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    import pyarrow as pa

    from patterns.positions import StreamPosition
    from patterns.store.model import Checkpoint, CommitResult, RunRecord, TableMeta

T = TypeVar("T")

Dialect = Literal["duckdb", "postgres"]


@dataclass(frozen=True)
class Capabilities:
    """What differs between backends, for the code above the store to ask rather than know."""

    #: The backend's name (``duckdb``, ``postgresql``), as in the store URL's scheme.
    backend: str
    #: The SQL dialect table data is queried in (SQL nodes, ``read_sql``).
    dialect: Dialect
    #: Whether several processes may write to the store at once (several engines).
    concurrent_processes: bool
    #: The store as a user should see it in messages (a path, or a URL without password).
    location: str


@dataclass(frozen=True)
class TableVersion:
    """One version of a table: when and why it began, and whether its rows are still kept."""

    version: int
    physical: str
    created_at: dt.datetime
    run_id: str | None
    reason: str | None
    available: bool


@dataclass(frozen=True)
class QueueItem:
    """A run waiting in the durable queue (``run_id`` set once it has started)."""

    id: str
    node_id: str
    trigger: str
    not_before: dt.datetime
    attempt: int = 1
    parameters: dict[str, Any] | None = None
    enqueued_at: dt.datetime | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Schedule:
    """A node's cron schedule and the next time it fires."""

    node_id: str
    cron: str
    timezone: str
    next_fire: dt.datetime


@dataclass(frozen=True)
class PageRequest:
    """One page of a table's rows, keyset-paged: sorted by ``sort`` (None: commit order),
    filtered on one column (``where`` ``op`` ``value``, the value given as text and cast by
    the store to the column's type), starting after ``after`` (the last row's sort value and
    hidden id, or its id alone), at most ``limit`` rows (the store reads one more)."""

    sort: str | None = None
    descending: bool = False
    where: str | None = None
    op: str = "eq"
    value: str | None = None
    after: Sequence[Any] | None = None
    limit: int = 100


@dataclass(frozen=True)
class CommitRecord:
    """One table's part of a commit that wakes readers."""

    seq: int
    table: str
    node_id: str | None


@dataclass(frozen=True)
class Lease:
    """A named right (``node:load``, ``engine:<id>``) held by one holder until it expires;
    ``token`` (the fencing token) grows each time the lease changes hands."""

    name: str
    holder: str
    token: int
    expires_at: dt.datetime


# ---------------------------------------------------------------------- repositories
class RunRepository(Protocol):
    def insert(self, run: RunRecord) -> None: ...
    def update(self, run_id: str, **fields: Any) -> bool:
        """Change fields of a run's record; False when there is no such run."""
    def get(self, run_id: str) -> RunRecord | None:
        """The run with this id, or the only one whose id starts or ends with it."""
    def matching(self, fragment: str, limit: int = 6) -> list[str]:
        """Ids of runs whose id is, starts with or ends with ``fragment`` (newest first)."""
    def recent(self, node_id: str | None = None, limit: int = 50,
               status: str | None = None) -> list[RunRecord]:
        """Runs (of one node, or all; of one status, or any), newest first."""
    def latest(self) -> dict[str, RunRecord]:
        """Each node's newest run, however long ago it was."""
    def latest_status(self) -> dict[str, str]:
        """Each node's newest run's status."""
    def nodes_that_ran(self) -> set[str]: ...
    def seen_commits(self, *, succeeded_only: bool) -> dict[str, int]:
        """Each node's newest ``seen_commit`` over its finished (or succeeded) runs."""
    def fail_running(self, error: str, at: dt.datetime,
                     except_nodes: Collection[str] = ()) -> int:
        """Mark every run still ``running`` (but those of ``except_nodes``) failed with
        ``error``; how many there were."""
    def add_error(self, run_ids: Sequence[str], text: str) -> None:
        """Append ``text`` to the errors of these runs, those that failed."""


class QueueRepository(Protocol):
    def enqueue(self, node_id: str, trigger: str, *, not_before: dt.datetime | None = None,
                attempt: int = 1, parameters: Mapping[str, Any] | None = None,
                coalesce: bool = False) -> QueueItem | None:
        """Queue a run; with ``coalesce``, nothing when the node already has one waiting."""
    def items(self, *, started: bool | None = None) -> list[QueueItem]:
        """Oldest first: waiting (``started=False``), running (True) or all."""
    def mark_started(self, item_id: str, run_id: str) -> bool:
        """The item's run started; False when it had started already (another engine
        took it first)."""
    def release(self, item_id: str) -> None:
        """The item waits again (its run did not start after all, or was stopped)."""
    def remove(self, item_id: str) -> None: ...
    def recover(self) -> list[QueueItem]:
        """After a crash: started items wait again; returns them as they were."""


class ScheduleRepository(Protocol):
    def all(self) -> dict[str, Schedule]: ...
    def set(self, schedule: Schedule) -> None: ...
    def drop(self, node_id: str) -> None: ...


class WebhookRepository(Protocol):
    def tokens(self) -> dict[str, str]: ...
    def ensure_token(self, node_id: str) -> str:
        """The node's webhook token, made (unguessable) the first time."""


class LogRepository(Protocol):
    def save(self, run_id: str, text: str, truncated: bool, *, first: bool = False) -> None:
        """Save a run's log (``first``: it has none yet; an empty one is then not saved)."""
    def get(self, run_id: str) -> str | None: ...
    def exists(self, run_id: str) -> bool: ...


class MemoryRepository(Protocol):
    """What a node remembers between runs: its state document and its stream positions."""

    def state(self, node_id: str) -> dict[str, Any]: ...
    def set_state(self, node_id: str, doc: Mapping[str, Any] | None) -> None:
        """Replace the node's state (None or empty: forget it)."""
    def positions(self, node_id: str) -> dict[str, StreamPosition]: ...
    def set_position(self, node_id: str, table: str,
                     position: StreamPosition | None) -> None: ...
    def reset_positions(self, node_id: str, table: str | None = None) -> int:
        """Forget the node's positions (on ``table``, or all); how many were forgotten."""
    def all_positions(self) -> list[tuple[str, str, StreamPosition]]: ...
    def memory(self, node_id: str) -> tuple[dict[str, Any], dict[str, StreamPosition]]:
        """State and positions in one round trip (what a run starts from)."""


class CommitRepository(Protocol):
    def since(self, seq: int) -> list[CommitRecord]:
        """Commits after ``seq`` that wake readers, in order."""
    def last_by_writer(self, after: int) -> dict[tuple[str, str | None], int]:
        """Per (table, writing node), the last commit after ``after`` that wakes readers."""
    def last_per_table(self) -> dict[str, dt.datetime]:
        """When each table last had a commit."""


class TableRepository(Protocol):
    def get(self, name: str) -> TableMeta | None: ...
    def all(self) -> list[TableMeta]: ...
    def versions(self, name: str) -> list[TableVersion]: ...
    def as_of(self, meta: TableMeta, version: TableVersion) -> TableMeta:
        """``meta`` as it was at an older ``version`` (its rows' physical table and the
        columns it had then)."""
    def count(self, meta: TableMeta, where: str | None = None) -> int:
        """Rows of the table's current version (those a SQL condition ``where`` holds for)."""


class LeaseRepository(Protocol):
    """Leases with expiry and fencing tokens: which engine may run a node, for how long
    (times are the store's clock). A store for one process grants every lease."""

    def acquire(self, name: str, holder: str, seconds: float) -> Lease | None:
        """The lease, taken (or renewed, for its holder) for ``seconds``; None while another
        holder's has not expired."""
    def renew(self, lease: Lease, seconds: float) -> Lease | None:
        """``seconds`` more, if still held; None when it was lost."""
    def release(self, lease: Lease) -> bool: ...
    def holds(self, lease: Lease) -> bool:
        """Whether ``lease`` is still held (the fencing check): it cannot change hands
        before the transaction ends."""
    def get(self, name: str) -> Lease | None: ...
    def live(self, prefix: str = "") -> list[Lease]:
        """The leases not yet expired whose names start with ``prefix``."""


# ---------------------------------------------------------------------- views
class Transaction(Protocol):
    """A write transaction or a read view: repositories, and table data as Arrow. Readers
    it returns are valid while the view is open."""

    runs: RunRepository
    queue: QueueRepository
    schedules: ScheduleRepository
    webhooks: WebhookRepository
    logs: LogRepository
    memory: MemoryRepository
    commits: CommitRepository
    tables: TableRepository
    leases: LeaseRepository

    def scan(self, meta: TableMeta, *, limit: int | None = None,
             offset: int | None = None) -> pa.RecordBatchReader:
        """A table's rows in commit order (of its current version, or of the older one
        ``tables.as_of`` gave)."""
    def stream(self, meta: TableMeta, position: StreamPosition) -> pa.RecordBatchReader:
        """The rows of the pass ``position`` is in, from where it is (with the hidden id
        column when the table shows none)."""
    def query(self, sql: str, params: Sequence[Any] | None = None, *,
              integer_division: bool = False,
              relations: Sequence[tuple[str, pa.Table]] = ()) -> pa.RecordBatchReader:
        """A query in the store's dialect over the tables' views (``read_sql``);
        ``relations`` are rows the query sees under their names (tables of outside
        databases), in place of the store's table of that name."""
    def page(self, meta: TableMeta, ask: PageRequest, id_name: str) -> pa.Table:
        """One page of rows (``ask.limit + 1`` at most), with each row's hidden id as
        ``id_name``. A filter value that does not fit its column is a ``DataError``."""


class Archive(Protocol):
    """Every row of a store, for moving all of it (``patterns store copy``): a read archive
    is one snapshot, a write archive one transaction (see :mod:`patterns.store.archive`)."""

    def meta_rows(self, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Every row of a platform metadata table (JSON as text), with its column names."""
    def version_rows(self, physical: str) -> pa.RecordBatchReader:
        """Every row of a table version, with every column it has (hidden ones too)."""
    def is_empty(self) -> bool:
        """Whether the store holds no tables, runs, state or anything queued."""
    def clear(self) -> None:
        """Drop every table and forget every metadata row (a forced copy's target)."""
    @property
    def view(self) -> Transaction:
        """The archive's view: the store's tables and their versions."""

    def physical(self, name: str, version: int) -> str:
        """The physical name a version of table ``name`` has in this store."""
    def put_version(self, meta: TableMeta, rows: pa.RecordBatchReader) -> int:
        """Make the table version ``meta`` describes (its columns as of that version) with
        these rows, by the columns both have; how many rows."""
    def put_meta(self, table: str, names: Sequence[str],
                 rows: Sequence[Sequence[Any]]) -> int:
        """Insert rows into a platform metadata table, by the columns both have."""
    def finish(self) -> None:
        """After a copy: the commit sequence and the ids go on after what was copied, and
        each table's view shows its current version."""


class EarlyWrites(Protocol):
    """A run's staged appends inserted before its checkpoint commits, in a transaction of
    their own that the commit then finishes (see :meth:`Store.early_writes`). Nothing of
    it is visible before that commit; it is thrown away if anything else wrote to the
    store in between, and the commit applies the staged rows as it would have."""

    def advance(self) -> None:
        """Insert what of the checkpoint's staged appends may go now (never raises: a
        part that cannot go early is left to the commit)."""
    def close(self) -> None:
        """Throw away what was inserted (the checkpoint was dropped, or committed)."""


class Store(Protocol):
    """A Patterns store: tables with versions, streams' rows, and the platform metadata."""

    capabilities: Capabilities
    #: The file of an embedded store (None for a database server).
    path: Path | None
    read_only: bool

    def read(self) -> AbstractContextManager[Transaction]:
        """A view of what is committed."""
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction: committed when the block ends, rolled back on an error.
        Write transactions take turns."""
    def autocommit(self) -> AbstractContextManager[Transaction]:
        """Writes committed one statement at a time without waiting for a turn (for rows
        no other writer touches: a run's start record)."""
    def commit(self, cp: Checkpoint, *, timeout: float | None = None,
               stop: threading.Event | None = None,
               also: Callable[[Transaction, CommitResult], None] | None = None,
               early: EarlyWrites | None = None,
               ) -> CommitResult:
        """Apply a checkpoint atomically (``also`` runs in the same transaction);
        ``CommitTimeout`` when it runs past ``timeout`` or ``stop`` is set. ``early``:
        what :meth:`early_writes` inserted of ``cp`` (used or thrown away; closed)."""
    def early_writes(self, cp: Checkpoint, before: Callable[[], None]) -> EarlyWrites | None:
        """Insert ``cp``'s staged appends as they grow, before it commits (None: this
        store does not, or not for this node now). ``before`` runs before the first
        insert (the engine writes the run's start record then)."""
    def with_staged(self, cp: Checkpoint, read: Callable[[Transaction], T]) -> T:
        """``read`` on a view where ``cp`` is applied; then the changes are thrown away."""
    def open_reader(self, read: Callable[[Transaction], pa.RecordBatchReader]
                    ) -> pa.RecordBatchReader:
        """The reader ``read`` makes on a read view kept open until it is drained (a long
        read that must not hold its caller's block open)."""
    def archive(self, *, write: bool = False) -> AbstractContextManager[Archive]:
        """The store's rows whole: a snapshot to read, or (``write``) one transaction to
        write, committed when the block ends."""
    def last_commit(self) -> int: ...
    def table(self, name: str) -> TableMeta | None:
        """Table ``name``'s facts as committed (None: no such table). An embedded store,
        the only writer of its tables, answers from what its last commit left, with no
        query (what a run asks at every start and write)."""
    def memory(self, node_id: str) -> tuple[dict[str, Any], dict[str, StreamPosition]]:
        """A node's state and stream positions as committed (what a run starts from); an
        embedded store answers from memory once it has read them. Not to be changed."""
    def view_name(self, table: str) -> str:
        """How SQL names the table's current version."""
    def close(self) -> None: ...
