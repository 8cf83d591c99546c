"""What a store takes in and hands out: table metadata, staged table operations, checkpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from patterns.positions import StreamPosition
from patterns.store.columns import Column

HIDDEN_ID = "_patterns_id"
DEFAULT_ID = "patterns_id"
#: A hidden BIGINT column of every DuckDB table version: the key of the row's id
#: (:func:`~patterns.store.ids.id_key`: millisecond * 2**15 + block number, one value per
#: block of ids), or, for ids made before blocks had keys (up to ``id_keys.shared_up_to``),
#: the id's millisecond, which is smaller than every key. Ids grow in commit order, so this
#: grows too; a stream pass filters on it first, and DuckDB's zone maps skip the row groups
#: committed before the pass (they keep only an 8-byte prefix of a text column). The name is
#: the column's first meaning (migration 3). See docs/store.md.
ID_MS = "_patterns_id_ms"

OpKind = Literal["append", "upsert", "replace", "truncate", "reset", "init", "sql", "delete",
                 "alter"]
SqlAction = Literal["select", "insert", "update", "delete", "truncate", "create", "add_column"]


@dataclass(frozen=True)
class TableOptions:
    """What ``Table(..., schema=)`` and ``table.init(...)`` ask of a table."""

    schema: Mapping[str, str] | None = None
    schema_hints: Mapping[str, str] | None = None
    unique_on: tuple[str, ...] | None = None
    add_created: str | None = None
    add_monotonic_id: str | None = DEFAULT_ID
    auto_indexes: bool = True
    #: What happens to a value that does not fit its column (see patterns.store.conform):
    #: None is the app's choice (graph.yml), else "refuse".
    contract: str | None = None
    #: The name of the named schema (graph.yml ``schemas:``) ``schema`` came from, if any.
    schema_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_name": self.schema_name,
            "schema": dict(self.schema) if self.schema else None,
            "schema_hints": dict(self.schema_hints) if self.schema_hints else None,
            "unique_on": list(self.unique_on) if self.unique_on else None,
            "add_created": self.add_created,
            "add_monotonic_id": self.add_monotonic_id,
            "auto_indexes": self.auto_indexes,
            "contract": self.contract,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> TableOptions:
        unique = doc.get("unique_on")
        return cls(
            schema=doc.get("schema"),
            schema_hints=doc.get("schema_hints"),
            unique_on=tuple(unique) if unique else None,
            add_created=doc.get("add_created"),
            add_monotonic_id=doc.get("add_monotonic_id", DEFAULT_ID),
            auto_indexes=bool(doc.get("auto_indexes", True)),
            contract=doc.get("contract"),
            schema_name=doc.get("schema_name"),
        )


@dataclass(frozen=True)
class StoreRules:
    """What graph.yml declares of one table: its contract and its schema (field → type)."""

    contract: str | None = None
    schema: Mapping[str, str] | None = None
    #: The named schema's ``unique_on`` (the table's upsert key unless init() gives one).
    unique_on: tuple[str, ...] | None = None
    schema_name: str | None = None


@dataclass(frozen=True)
class SqlWrite:
    """One SQL statement that changes one table, already in the store's dialect.

    ``statement`` is a parsed statement (a sqlglot expression) naming tables by their views
    (``main."name"``); the store points it at the table's current version when it applies
    it. ``select`` makes a new version holding the query's rows; ``insert`` adds rows;
    ``update`` gives changed rows new ids. ``where`` (``daily.sql:4``) and ``lines`` (the
    statement's lines as written, by line number) let errors point at the user's line.
    """

    action: SqlAction
    statement: Any
    params: tuple[Any, ...] = ()
    where: str = ""
    lines: tuple[tuple[int, str], ...] = ()
    if_not_exists: bool = False
    integer_division: bool = False  # Postgres semantics: 7 / 2 = 3
    #: Arrow tables the statement reads by name (tables of an outside database, fetched
    #: for the run): registered on the cursor while it applies, shadowing ``main."name"``.
    relations: tuple[tuple[str, Any], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class TableOp:
    """One staged change to a table, applied in order at the next checkpoint."""

    kind: OpKind
    data: pa.Table | None = None
    unique_on: tuple[str, ...] | None = None
    options: TableOptions | None = None  # for "init"
    sql: SqlWrite | None = None  # for "sql"
    where: str | None = None  # for "delete": a SQL condition
    alter: tuple[str, str] | None = None  # for "alter": the column and its new type

    @property
    def rows(self) -> int:
        return self.data.num_rows if self.data is not None else 0


@dataclass(frozen=True)
class TableMeta:
    name: str
    version: int
    physical: str
    columns: tuple[Column, ...]
    id_column: str | None
    created_column: str | None
    unique_on: tuple[str, ...] | None
    last_id: str | None
    last_commit: int
    options: TableOptions = field(default_factory=TableOptions)

    @property
    def physical_id(self) -> str:
        """The id column as stored (hidden when ``init(add_monotonic_id=None)``)."""
        return self.id_column or HIDDEN_ID

    def column(self, name: str) -> Column | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None

    def kinds(self) -> dict[str, str]:
        """Each column's kind, by name."""
        return {c.name: c.kind for c in self.columns}

    def visible_names(self) -> list[str]:
        """Column names a reader sees, in order: the user's fields, created, id."""
        names = [c.name for c in self.columns]
        if self.created_column:
            names.append(self.created_column)
        if self.id_column:
            names.append(self.id_column)
        return names

    def json_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "json"]

    def schema_doc(self) -> dict[str, Any]:
        cols = [c.to_json() for c in self.columns]
        if self.created_column:
            cols.append({"name": self.created_column, "kind": "timestamptz"})
        if self.id_column:
            cols.append({"name": self.id_column, "kind": "text"})
        return {"version": self.version, "columns": cols,
                "unique_on": list(self.unique_on) if self.unique_on else None,
                "id_column": self.id_column, "created_column": self.created_column,
                "schema_name": self.options.schema_name,
                "declared": dict(self.options.schema) if self.options.schema else None}


@dataclass
class Checkpoint:
    """Everything a run commits at once: table changes, state and stream positions."""

    run_id: str
    node_id: str
    ops: dict[str, list[TableOp]] = field(default_factory=dict)
    state: dict[str, Any] | None = None  # None: unchanged
    positions: dict[str, StreamPosition | None] = field(default_factory=dict)  # None: forget
    wakes: bool = True  # False: these rows do not make readers out of date
    #: The table of each op in the order they were staged (ops added with :meth:`add`), so
    #: a statement reading another table sees what was staged for it before.
    order: list[str] = field(default_factory=list)
    #: Versions of a table kept when this checkpoint makes a new one (None: all).
    keep_versions: int | None = None
    #: The graph.yml rules of the tables it writes, and the most columns a table may have.
    rules: Mapping[str, StoreRules] = field(default_factory=dict)
    max_columns: int | None = None
    #: Text fields new to a table whose every value is ISO-8601 become date/timestamp
    #: columns (webhook bodies: JSON has no date type).
    infer_timestamps: bool = False

    def add(self, table: str, op: TableOp) -> None:
        self.ops.setdefault(table, []).append(op)
        self.order.append(table)

    def sequence(self) -> Iterator[tuple[str, TableOp]]:
        """Every op with its table: in staging order, then any added to ``ops`` directly."""
        done: dict[str, int] = {}
        for table in self.order:
            index = done.get(table, 0)
            ops = self.ops.get(table, [])
            if index < len(ops):
                done[table] = index + 1
                yield table, ops[index]
        for table in sorted(self.ops):
            yield from ((table, op) for op in self.ops[table][done.get(table, 0):])

    def snapshot(self) -> Checkpoint:
        """A copy of the staged table ops (to apply and throw away)."""
        return Checkpoint(self.run_id, self.node_id, ops={k: list(v) for k, v in self.ops.items()},
                          order=list(self.order), keep_versions=self.keep_versions,
                          rules=self.rules, max_columns=self.max_columns,
                          infer_timestamps=self.infer_timestamps)


@dataclass(frozen=True)
class CommitResult:
    seq: int
    rows_added: Mapping[str, int]
    tables: Mapping[str, TableMeta]


def dumps(doc: Any) -> str:
    return json.dumps(doc, default=str, separators=(",", ":"))


#: Every status a run can have (docs/concepts.md, "Run statuses"): ``cancelled`` is a run
#: stopped on purpose (Ctrl-C in ``patterns run``, the API's cancel, a server stopping).
RunStatus = Literal["queued", "running", "succeeded", "failed", "timed_out", "cancelled"]
RUN_STATUSES: tuple[RunStatus, ...] = ("queued", "running", "succeeded", "failed", "timed_out",
                                       "cancelled")


@dataclass(frozen=True)
class RunRecord:
    """One run of a node as the store keeps it."""

    id: str
    node_id: str
    node_title: str
    trigger: str
    status: str  # one of RUN_STATUSES
    queued_at: Any
    started_at: Any = None
    ended_at: Any = None
    attempt: int = 1
    parameters: Mapping[str, Any] | None = None
    seen_commit: int = 0
    rows_read: Mapping[str, int] | None = None
    rows_written: Mapping[str, int] | None = None
    checkpoints: int = 0
    exit_code: int | None = None
    error: str | None = None
    traceback: str | None = None

    @property
    def short_id(self) -> str:
        """The run's id as shown everywhere: see :func:`short_run_id`."""
        return short_run_id(self.id)

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return float((self.ended_at - self.started_at).total_seconds())

    def to_json(self) -> dict[str, Any]:
        doc = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for key in ("queued_at", "started_at", "ended_at"):
            if doc[key] is not None:
                doc[key] = doc[key].isoformat()
        doc["seconds"] = self.seconds
        doc["short_id"] = self.short_id
        return doc


#: How many characters of a run id are shown (the end of its random part).
SHORT_RUN_ID = 8


def short_run_id(run_id: str) -> str:
    """The short form of a run id, shown wherever runs are and accepted by ``--run``: its
    last 8 characters. A run id is a ULID, 10 characters of time then 16 random ones, so
    runs of the same moment share their start; their ends differ (40 random bits)."""
    return run_id[-SHORT_RUN_ID:]
