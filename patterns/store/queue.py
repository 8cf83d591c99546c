"""The durable run queue, cron schedules and webhook tokens (``patterns_meta``, migration 2).

Everything the server's scheduler must not forget across a restart lives here, changed in
the same transactions as what it stands for: a cron slot moves on in the transaction that
queues its run; a queue item leaves in the transaction that records its run's end.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from typing import Any

import duckdb

from patterns.store.ids import encode
from patterns.store.migrations import META

_COLUMNS = "id, node_id, trigger, not_before, attempt, parameters, enqueued_at, run_id"


@dataclass(frozen=True)
class QueueItem:
    id: str
    node_id: str
    trigger: str
    not_before: dt.datetime
    attempt: int = 1
    parameters: dict[str, Any] | None = None
    enqueued_at: dt.datetime | None = None
    run_id: str | None = None


def _item(row: tuple[Any, ...]) -> QueueItem:
    return QueueItem(id=row[0], node_id=row[1], trigger=row[2], not_before=row[3],
                     attempt=int(row[4]), parameters=json.loads(row[5]) if row[5] else None,
                     enqueued_at=row[6], run_id=row[7])


def new_item_id() -> str:
    import os
    import time

    return encode(int(time.time() * 1000), 10) + encode(int.from_bytes(os.urandom(10), "big"), 16)


def enqueue(cur: duckdb.DuckDBPyConnection, node_id: str, trigger: str, *,
            not_before: dt.datetime | None = None, attempt: int = 1,
            parameters: dict[str, Any] | None = None,
            coalesce: bool = False) -> QueueItem | None:
    """Queue a run of ``node_id``. With ``coalesce``, nothing is added if the node already
    has a run waiting (new rows wake a node once, however many commits they came in)."""
    now = dt.datetime.now(dt.UTC)
    if coalesce:
        waiting = cur.execute(f"SELECT count(*) FROM {META}.run_queue WHERE node_id = ? "
                              f"AND run_id IS NULL", [node_id]).fetchall()[0][0]
        if waiting:
            return None
    item = QueueItem(new_item_id(), node_id, trigger, not_before or now, attempt,
                     dict(parameters) if parameters else None, now)
    cur.execute(f"INSERT INTO {META}.run_queue ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                [item.id, node_id, trigger, item.not_before, attempt,
                 json.dumps(item.parameters) if item.parameters else None, now])
    return item


def items(cur: duckdb.DuckDBPyConnection, *, started: bool | None = None) -> list[QueueItem]:
    """Queue items, oldest first: waiting ones (``started=False``), running ones (True), all."""
    where = {None: "", False: "WHERE run_id IS NULL", True: "WHERE run_id IS NOT NULL"}[started]
    rows = cur.execute(f"SELECT {_COLUMNS} FROM {META}.run_queue {where} "
                       f"ORDER BY not_before, enqueued_at, id").fetchall()
    return [_item(r) for r in rows]


def mark_started(cur: duckdb.DuckDBPyConnection, item_id: str, run_id: str) -> None:
    cur.execute(f"UPDATE {META}.run_queue SET run_id = ? WHERE id = ?", [run_id, item_id])


def remove(cur: duckdb.DuckDBPyConnection, item_id: str) -> None:
    cur.execute(f"DELETE FROM {META}.run_queue WHERE id = ?", [item_id])


def recover(cur: duckdb.DuckDBPyConnection) -> list[QueueItem]:
    """After a crash: items whose run had started are waiting again (their runs never
    committed past their last checkpoint). Returns them as they were, run ids included."""
    interrupted = items(cur, started=True)
    cur.execute(f"UPDATE {META}.run_queue SET run_id = NULL WHERE run_id IS NOT NULL")
    return interrupted


# ---------------------------------------------------------------------- schedules
@dataclass(frozen=True)
class Schedule:
    node_id: str
    cron: str
    timezone: str
    next_fire: dt.datetime


def schedules(cur: duckdb.DuckDBPyConnection) -> dict[str, Schedule]:
    rows = cur.execute(f"SELECT node_id, cron, timezone, next_fire FROM {META}.schedules"
                       ).fetchall()
    return {r[0]: Schedule(r[0], r[1], r[2], r[3]) for r in rows}


def set_schedule(cur: duckdb.DuckDBPyConnection, schedule: Schedule) -> None:
    cur.execute(f"DELETE FROM {META}.schedules WHERE node_id = ?", [schedule.node_id])
    cur.execute(f"INSERT INTO {META}.schedules VALUES (?, ?, ?, ?)",
                [schedule.node_id, schedule.cron, schedule.timezone, schedule.next_fire])


def drop_schedule(cur: duckdb.DuckDBPyConnection, node_id: str) -> None:
    cur.execute(f"DELETE FROM {META}.schedules WHERE node_id = ?", [node_id])


# ---------------------------------------------------------------------- webhooks
def webhook_tokens(cur: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = cur.execute(f"SELECT node_id, token FROM {META}.webhooks").fetchall()
    return {str(node_id): str(token) for node_id, token in rows}


def ensure_webhook_token(cur: duckdb.DuckDBPyConnection, node_id: str) -> str:
    """The node's webhook token, made (unguessable: 32 random bytes) the first time."""
    existing = webhook_tokens(cur).get(node_id)
    if existing:
        return existing
    token = secrets.token_urlsafe(32)
    cur.execute(f"INSERT INTO {META}.webhooks VALUES (?, ?, ?)",
                [node_id, token, dt.datetime.now(dt.UTC)])
    return token
