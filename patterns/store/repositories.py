"""The platform metadata's repositories, written once in SQL both backends speak.

Each repository works over a :class:`Connection`: ``rows(sql, params)`` with ``?``
placeholders. A backend gives its own connection (DuckDB's cursor; PostgreSQL's, which turns
``?`` into ``%s``); the SQL here avoids what differs (no ``starts_with``, ``arg_max`` or
``ON CONFLICT``; JSON is written as text and read back from text or already parsed).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from patterns.positions import StreamPosition
from patterns.store.columns import Column
from patterns.store.ids import encode
from patterns.store.interface import (
    CommitRecord,
    CommitRepository,
    LogRepository,
    MemoryRepository,
    QueueItem,
    QueueRepository,
    RunRepository,
    Schedule,
    ScheduleRepository,
    TableRepository,
    TableVersion,
    WebhookRepository,
)
from patterns.store.migrations import DATA, META
from patterns.store.model import ID_MS, RunRecord, TableMeta, TableOptions, dumps
from patterns.store.tables import qualified


class Connection(Protocol):
    """A backend's connection as the repositories use it."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders); its rows (none for most writes)."""
        ...


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def new_id() -> str:
    """A time-ordered unique id (a ULID), for queue items and runs."""
    return encode(int(time.time() * 1000), 10) + encode(int.from_bytes(os.urandom(10), "big"), 16)


# ---------------------------------------------------------------------- runs
_RUN_COLUMNS = ("id, node_id, node_title, trigger, status, queued_at, started_at, ended_at, "
                "attempt, parameters, seen_commit, rows_read, rows_written, checkpoints, "
                "exit_code, error, traceback")
_JSON_FIELDS = ("rows_read", "rows_written", "parameters")
_RUN_FIELDS = frozenset(_RUN_COLUMNS.split(", "))


def _run(row: Sequence[Any]) -> RunRecord:
    (rid, node_id, title, trigger, status, queued, started, ended, attempt, params, seen,
     rows_read, rows_written, checkpoints, exit_code, error, tb) = row
    return RunRecord(
        id=rid, node_id=node_id, node_title=title, trigger=trigger, status=status,
        queued_at=queued, started_at=started, ended_at=ended, attempt=attempt,
        parameters=_loads(params), seen_commit=seen, rows_read=_loads(rows_read),
        rows_written=_loads(rows_written), checkpoints=checkpoints, exit_code=exit_code,
        error=error, traceback=tb)


class Runs:
    def __init__(self, con: Connection) -> None:
        self.con = con

    def insert(self, run: RunRecord) -> None:
        self.con.rows(
            f"INSERT INTO {META}.runs ({_RUN_COLUMNS}) VALUES "
            f"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run.id, run.node_id, run.node_title, run.trigger, run.status, run.queued_at,
             run.started_at, run.ended_at, run.attempt,
             dumps(run.parameters) if run.parameters is not None else None, run.seen_commit,
             dumps(run.rows_read or {}), dumps(run.rows_written or {}), run.checkpoints,
             run.exit_code, run.error, run.traceback])

    def update(self, run_id: str, **fields: Any) -> bool:
        unknown = set(fields) - _RUN_FIELDS
        if unknown:
            raise ValueError(f"a run record has no field {', '.join(sorted(unknown))}")
        sets = ", ".join(f"{key} = ?" for key in fields)
        values = [dumps(v) if k in _JSON_FIELDS else v for k, v in fields.items()]
        return bool(self.con.rows(f"UPDATE {META}.runs SET {sets} WHERE id = ? RETURNING id",
                                  [*values, run_id]))

    def get(self, run_id: str) -> RunRecord | None:
        found = self.con.rows(f"SELECT {_RUN_COLUMNS} FROM {META}.runs WHERE {_MATCHES}",
                              [run_id] * 5)
        exact = [r for r in found if r[0] == run_id]
        if exact:
            return _run(exact[0])
        return _run(found[0]) if len(found) == 1 else None

    def matching(self, fragment: str, limit: int = 6) -> list[str]:
        return [str(r) for (r,) in self.con.rows(
            f"SELECT id FROM {META}.runs WHERE {_MATCHES} ORDER BY queued_at DESC, id DESC "
            f"LIMIT ?", [*[fragment] * 5, limit])]

    def recent(self, node_id: str | None = None, limit: int = 50,
               status: str | None = None) -> list[RunRecord]:
        conditions = [(c, v) for c, v in (("node_id = ?", node_id), ("status = ?", status))
                      if v is not None]
        where = f"WHERE {' AND '.join(c for c, _ in conditions)}" if conditions else ""
        return [_run(r) for r in self.con.rows(
            f"SELECT {_RUN_COLUMNS} FROM {META}.runs {where} ORDER BY queued_at DESC, id DESC "
            f"LIMIT ?", [*(v for _, v in conditions), limit])]

    def latest(self) -> dict[str, RunRecord]:
        """Each node's latest run, however long ago it was."""
        return {r.node_id: r for r in map(_run, self.con.rows(
            f"SELECT {_RUN_COLUMNS} FROM (SELECT {_RUN_COLUMNS}, row_number() OVER "
            f"(PARTITION BY node_id ORDER BY queued_at DESC, id DESC) AS latest "
            f"FROM {META}.runs) ranked WHERE latest = 1"))}

    def latest_status(self) -> dict[str, str]:
        return {str(n): str(s) for n, s in self.con.rows(
            f"SELECT DISTINCT ON (node_id) node_id, status FROM {META}.runs "
            f"ORDER BY node_id, queued_at DESC, id DESC")}

    def nodes_that_ran(self) -> set[str]:
        return {str(n) for (n,) in self.con.rows(f"SELECT DISTINCT node_id FROM {META}.runs")}

    def seen_commits(self, *, succeeded_only: bool) -> dict[str, int]:
        which = ("status = 'succeeded'" if succeeded_only else
                 "status NOT IN ('running', 'queued')")
        return {str(n): int(s) for n, s in self.con.rows(
            f"SELECT node_id, max(seen_commit) FROM {META}.runs WHERE {which} "
            f"GROUP BY node_id")}

    def fail_running(self, error: str, at: dt.datetime,
                     except_nodes: Collection[str] = ()) -> int:
        spared = sorted(except_nodes)
        but = f"AND node_id NOT IN ({', '.join('?' * len(spared))})" if spared else ""
        return len(self.con.rows(
            f"UPDATE {META}.runs SET status = 'failed', ended_at = ?, error = ? "
            f"WHERE status = 'running' {but} RETURNING id", [at, error, *spared]))

    def add_error(self, run_ids: Sequence[str], text: str) -> None:
        if run_ids:
            marks = ", ".join("?" * len(run_ids))
            self.con.rows(f"UPDATE {META}.runs SET error = error || ? WHERE id IN ({marks}) "
                          f"AND status = 'failed'", [text, *run_ids])


#: A run id given whole, or its start, or its end (the 8 characters `patterns run` shows).
_MATCHES = ("(id = ? OR left(id, length(?)) = ? OR right(id, length(?)) = ?)")


# ---------------------------------------------------------------------- queue, schedules
_QUEUE_COLUMNS = "id, node_id, trigger, not_before, attempt, parameters, enqueued_at, run_id"


def _item(row: Sequence[Any]) -> QueueItem:
    params = _loads(row[5])
    return QueueItem(id=row[0], node_id=row[1], trigger=row[2], not_before=row[3],
                     attempt=int(row[4]), parameters=dict(params) if params else None,
                     enqueued_at=row[6], run_id=row[7])


class Queue:
    def __init__(self, con: Connection) -> None:
        self.con = con

    def enqueue(self, node_id: str, trigger: str, *, not_before: dt.datetime | None = None,
                attempt: int = 1, parameters: Mapping[str, Any] | None = None,
                coalesce: bool = False) -> QueueItem | None:
        now = utcnow()
        if coalesce and self.con.rows(f"SELECT 1 FROM {META}.run_queue WHERE node_id = ? "
                                      f"AND run_id IS NULL LIMIT 1", [node_id]):
            return None
        item = QueueItem(new_id(), node_id, trigger, not_before or now, attempt,
                         dict(parameters) if parameters else None, now)
        self.con.rows(f"INSERT INTO {META}.run_queue ({_QUEUE_COLUMNS}) "
                      f"VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                      [item.id, node_id, trigger, item.not_before, attempt,
                       json.dumps(item.parameters) if item.parameters else None, now])
        return item

    def items(self, *, started: bool | None = None) -> list[QueueItem]:
        where = {None: "", False: "WHERE run_id IS NULL",
                 True: "WHERE run_id IS NOT NULL"}[started]
        return [_item(r) for r in self.con.rows(
            f"SELECT {_QUEUE_COLUMNS} FROM {META}.run_queue {where} "
            f"ORDER BY not_before, enqueued_at, id")]

    def mark_started(self, item_id: str, run_id: str) -> bool:
        return bool(self.con.rows(f"UPDATE {META}.run_queue SET run_id = ? WHERE id = ? "
                                  f"AND run_id IS NULL RETURNING id", [run_id, item_id]))

    def release(self, item_id: str) -> None:
        self.con.rows(f"UPDATE {META}.run_queue SET run_id = NULL WHERE id = ?", [item_id])

    def remove(self, item_id: str) -> None:
        self.con.rows(f"DELETE FROM {META}.run_queue WHERE id = ?", [item_id])

    def recover(self) -> list[QueueItem]:
        interrupted = self.items(started=True)
        self.con.rows(f"UPDATE {META}.run_queue SET run_id = NULL WHERE run_id IS NOT NULL")
        return interrupted


class Schedules:
    def __init__(self, con: Connection) -> None:
        self.con = con

    def all(self) -> dict[str, Schedule]:
        return {r[0]: Schedule(r[0], r[1], r[2], r[3]) for r in self.con.rows(
            f"SELECT node_id, cron, timezone, next_fire FROM {META}.schedules")}

    def set(self, schedule: Schedule) -> None:
        self.drop(schedule.node_id)
        self.con.rows(f"INSERT INTO {META}.schedules VALUES (?, ?, ?, ?)",
                      [schedule.node_id, schedule.cron, schedule.timezone, schedule.next_fire])

    def drop(self, node_id: str) -> None:
        self.con.rows(f"DELETE FROM {META}.schedules WHERE node_id = ?", [node_id])


class Webhooks:
    def __init__(self, con: Connection) -> None:
        self.con = con

    def tokens(self) -> dict[str, str]:
        return {str(n): str(t) for n, t in self.con.rows(
            f"SELECT node_id, token FROM {META}.webhooks")}

    def ensure_token(self, node_id: str) -> str:
        found = self.con.rows(f"SELECT token FROM {META}.webhooks WHERE node_id = ?", [node_id])
        if found:
            return str(found[0][0])
        token = secrets.token_urlsafe(32)  # 32 random bytes: unguessable
        self.con.rows(f"INSERT INTO {META}.webhooks VALUES (?, ?, ?)", [node_id, token, utcnow()])
        return token


# ---------------------------------------------------------------------- logs, memory, commits
class Logs:
    def __init__(self, con: Connection) -> None:
        self.con = con

    def save(self, run_id: str, text: str, truncated: bool, *, first: bool = False) -> None:
        if not first:
            self.con.rows(f"DELETE FROM {META}.run_logs WHERE run_id = ?", [run_id])
        elif not text and not truncated:
            return
        self.con.rows(f"INSERT INTO {META}.run_logs VALUES (?, ?, ?)", [run_id, text, truncated])

    def get(self, run_id: str) -> str | None:
        found = self.con.rows(f"SELECT text FROM {META}.run_logs WHERE run_id = ?", [run_id])
        return str(found[0][0]) if found else None

    def exists(self, run_id: str) -> bool:
        return bool(self.con.rows(f"SELECT 1 FROM {META}.run_logs WHERE run_id = ?", [run_id]))


class Memory:
    def __init__(self, con: Connection) -> None:
        self.con = con

    def state(self, node_id: str) -> dict[str, Any]:
        found = self.con.rows(f"SELECT doc FROM {META}.node_state WHERE node_id = ?", [node_id])
        return dict(_loads(found[0][0])) if found else {}

    def set_state(self, node_id: str, doc: Mapping[str, Any] | None) -> None:
        self.con.rows(f"DELETE FROM {META}.node_state WHERE node_id = ?", [node_id])
        if doc:
            self.con.rows(f"INSERT INTO {META}.node_state VALUES (?, ?, ?)",
                          [node_id, dumps(dict(doc)), utcnow()])

    def positions(self, node_id: str) -> dict[str, StreamPosition]:
        return {str(t): StreamPosition.from_json(_loads(p)) for t, p in self.con.rows(
            f"SELECT table_name, position FROM {META}.stream_positions WHERE node_id = ?",
            [node_id])}

    def set_position(self, node_id: str, table: str, position: StreamPosition | None) -> None:
        if position is None:
            self.reset_positions(node_id, table)
            return
        # A stream run's final checkpoint moves a position the node has already: one
        # statement, not a delete and an insert (each is ~1 ms of a DuckDB commit's CPU).
        doc, now = dumps(position.to_json()), utcnow()
        if not self.con.rows(f"UPDATE {META}.stream_positions SET position = ?, "
                             f"updated_at = ? WHERE node_id = ? AND table_name = ? "
                             f"RETURNING 1", [doc, now, node_id, table]):
            self.con.rows(f"INSERT INTO {META}.stream_positions VALUES (?, ?, ?, ?)",
                          [node_id, table, doc, now])

    def reset_positions(self, node_id: str, table: str | None = None) -> int:
        which, params = ("AND table_name = ?", [node_id, table]) if table else ("", [node_id])
        return len(self.con.rows(f"DELETE FROM {META}.stream_positions WHERE node_id = ? "
                                 f"{which} RETURNING table_name", params))

    def all_positions(self) -> list[tuple[str, str, StreamPosition]]:
        return [(str(n), str(t), StreamPosition.from_json(_loads(p))) for n, t, p in
                self.con.rows(f"SELECT node_id, table_name, position FROM "
                              f"{META}.stream_positions ORDER BY node_id, table_name")]

    def memory(self, node_id: str) -> tuple[dict[str, Any], dict[str, StreamPosition]]:
        found = self.con.rows(
            f"SELECT NULL, CAST(doc AS VARCHAR) FROM {META}.node_state WHERE node_id = ? "
            f"UNION ALL SELECT table_name, CAST(position AS VARCHAR) FROM "
            f"{META}.stream_positions WHERE node_id = ?", [node_id, node_id])
        state: dict[str, Any] = {}
        positions: dict[str, StreamPosition] = {}
        for table, doc in found:
            if table is None:
                state = dict(_loads(doc))
            else:
                positions[str(table)] = StreamPosition.from_json(_loads(doc))
        return state, positions


class Commits:
    def __init__(self, con: Connection) -> None:
        self.con = con

    def since(self, seq: int) -> list[CommitRecord]:
        """Commits after ``seq`` that added or replaced rows and wake readers (a run that
        asked ``request_new_run(trigger_downstream=False)`` does not)."""
        return [CommitRecord(int(s), str(t), n) for s, t, n in self.con.rows(
            f"SELECT seq, table_name, node_id FROM {META}.commits WHERE seq > ? AND wakes "
            f"ORDER BY seq", [seq])]

    def last_by_writer(self, after: int) -> dict[tuple[str, str | None], int]:
        """Per table and the node that wrote it, the last commit after ``after`` that wakes
        readers: what deciding which nodes are out of date needs, in as many rows as there
        are such pairs, however many commits there were."""
        return {(str(t), n): int(s) for t, n, s in self.con.rows(
            f"SELECT table_name, node_id, max(seq) FROM {META}.commits WHERE seq > ? "
            f"AND wakes GROUP BY table_name, node_id", [after])}

    def last_per_table(self) -> dict[str, dt.datetime]:
        return {str(t): at for t, at in self.con.rows(
            f"SELECT table_name, max(committed_at) FROM {META}.commits GROUP BY table_name")}


# ---------------------------------------------------------------------- tables
_TABLE_COLUMNS = ("name, version, physical, columns, id_column, created_column, unique_on, "
                  "last_id, last_commit, options")


def _table(row: Sequence[Any]) -> TableMeta:
    name, version, physical, columns, id_col, created, unique, last_id, last, opts = row
    options = _loads(opts) if opts else None
    unique_on = _loads(unique) if unique else None
    return TableMeta(
        name=name, version=version, physical=physical,
        columns=tuple(Column(c["name"], c["kind"]) for c in _loads(columns)),
        id_column=id_col, created_column=created,
        unique_on=tuple(unique_on) if unique_on else None, last_id=last_id,
        last_commit=last,
        options=TableOptions.from_json(options) if options else TableOptions())


#: A column's kind by the type information_schema names (DuckDB's names, then PostgreSQL's).
_KINDS = {"BOOLEAN": "bool", "BIGINT": "int", "DOUBLE": "float", "DATE": "date",
          "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz", "TIME": "time",
          "JSON": "json", "BLOB": "bytes", "DOUBLE PRECISION": "float", "JSONB": "json",
          "TIMESTAMP WITHOUT TIME ZONE": "timestamp", "TIME WITHOUT TIME ZONE": "time",
          "BYTEA": "bytes"}


class Tables:
    def __init__(self, con: Connection) -> None:
        self.con = con

    def get(self, name: str) -> TableMeta | None:
        found = self.con.rows(f"SELECT {_TABLE_COLUMNS} FROM {META}.tables WHERE name = ?",
                              [name])
        return _table(found[0]) if found else None

    def all(self) -> list[TableMeta]:
        return [_table(r) for r in self.con.rows(
            f"SELECT {_TABLE_COLUMNS} FROM {META}.tables ORDER BY name")]

    def versions(self, name: str) -> list[TableVersion]:
        live = {str(p) for (p,) in self.con.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [DATA])}
        return [TableVersion(int(v), str(p), c, r, why, str(p) in live) for v, p, c, r, why in
                self.con.rows(f"SELECT version, physical, created_at, run_id, reason FROM "
                              f"{META}.table_versions WHERE name = ? ORDER BY version", [name])]

    def as_of(self, meta: TableMeta, version: TableVersion) -> TableMeta:
        found = self.con.rows(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [DATA, version.physical])
        platform = {meta.physical_id, meta.created_column, ID_MS}
        columns = tuple(Column(str(n), _KINDS.get(str(kind).upper(), "text"))
                        for n, kind in found if n not in platform)
        return replace(meta, version=version.version, physical=version.physical,
                       columns=columns)

    def count(self, meta: TableMeta, where: str | None = None) -> int:
        if where is None:
            return int(self.con.rows(f"SELECT count(*) FROM {qualified(meta.physical)}")[0][0])
        from patterns.store.repair import count_where

        return count_where(self.con, meta, where)


# ---------------------------------------------------------------------- a view's set
class MetadataViews:
    """The metadata repositories of one view, over its connection: a backend's
    :class:`~patterns.store.interface.Transaction` class starts from this."""

    def __init__(self, con: Connection) -> None:
        self.runs: RunRepository = Runs(con)
        self.queue: QueueRepository = Queue(con)
        self.schedules: ScheduleRepository = Schedules(con)
        self.webhooks: WebhookRepository = Webhooks(con)
        self.logs: LogRepository = Logs(con)
        self.memory: MemoryRepository = Memory(con)
        self.commits: CommitRepository = Commits(con)
        self.tables: TableRepository = Tables(con)
