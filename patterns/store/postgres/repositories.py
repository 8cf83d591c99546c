"""The platform metadata's repositories on PostgreSQL (schema ``patterns_meta``).

Each repository is a thin class over the view's cursor; the documents (run parameters, row
counts, state, positions) are JSON text, as in the DuckDB store. Keys are real keys here,
so a write that replaces a row is one ``INSERT ... ON CONFLICT DO UPDATE``.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from patterns.store.columns import Column
from patterns.store.interface import CommitRecord, QueueItem, Schedule, TableVersion
from patterns.store.model import RunRecord, TableMeta, TableOptions, dumps
from patterns.store.postgres.migrations import DATA, META
from patterns.store.postgres.tables import qualified

if TYPE_CHECKING:
    from patterns.store.postgres.tables import Cursor

_RUN_COLUMNS = ("id, node_id, node_title, trigger, status, queued_at, started_at, ended_at, "
                "attempt, parameters, seen_commit, rows_read, rows_written, checkpoints, "
                "exit_code, error, traceback")
_RUN_FIELDS = frozenset(c.strip() for c in _RUN_COLUMNS.split(","))
_JSON_FIELDS = ("rows_read", "rows_written", "parameters")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _loads(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else text


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
    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    def insert(self, run: RunRecord) -> None:
        self.cur.execute(
            f"INSERT INTO {META}.runs ({_RUN_COLUMNS}) VALUES "
            f"(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [run.id, run.node_id, run.node_title, run.trigger, run.status, run.queued_at,
             run.started_at, run.ended_at, run.attempt,
             dumps(run.parameters) if run.parameters is not None else None, run.seen_commit,
             dumps(run.rows_read or {}), dumps(run.rows_written or {}), run.checkpoints,
             run.exit_code, run.error, run.traceback])

    def update(self, run_id: str, **fields: Any) -> bool:
        unknown = set(fields) - _RUN_FIELDS
        if unknown:
            raise ValueError(f"runs have no field(s) {sorted(unknown)}")
        if not fields:
            return self.get(run_id) is not None
        sets = ", ".join(f"{key} = %s" for key in fields)
        values = [dumps(v) if k in _JSON_FIELDS and v is not None else v
                  for k, v in fields.items()]
        row = self.cur.execute(f"UPDATE {META}.runs SET {sets} WHERE id = %s RETURNING id",
                               [*values, run_id]).fetchone()  # type: ignore[arg-type]
        return row is not None

    def get(self, run_id: str) -> RunRecord | None:
        rows = self.cur.execute(
            f"SELECT {_RUN_COLUMNS} FROM {META}.runs WHERE id = %s "
            f"OR starts_with(id, %s) OR right(id, length(%s)) = %s LIMIT 2",
            [run_id, run_id, run_id, run_id]).fetchall()
        exact = [r for r in rows if r[0] == run_id]
        if exact:
            return _run(exact[0])
        return _run(rows[0]) if len(rows) == 1 else None

    def matching(self, fragment: str, limit: int = 6) -> list[str]:
        rows = self.cur.execute(
            f"SELECT id FROM {META}.runs WHERE id = %s OR starts_with(id, %s) "
            f"OR right(id, length(%s)) = %s ORDER BY queued_at DESC, id DESC LIMIT %s",
            [fragment, fragment, fragment, fragment, limit]).fetchall()
        return [str(r[0]) for r in rows]

    def recent(self, *, node_id: str | None = None, status: str | None = None,
               trigger: str | None = None, since: dt.datetime | None = None,
               limit: int = 50) -> list[RunRecord]:
        where: list[str] = ["true"]
        params: list[Any] = []
        for column, value in (("node_id", node_id), ("status", status),
                              ("trigger", trigger)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        if since is not None:
            where.append("queued_at >= %s")
            params.append(since)
        rows = self.cur.execute(
            f"SELECT {_RUN_COLUMNS} FROM {META}.runs WHERE {' AND '.join(where)} "
            f"ORDER BY queued_at DESC, id DESC LIMIT %s",  # type: ignore[arg-type]
            [*params, limit]).fetchall()
        return [_run(r) for r in rows]

    def latest_status(self) -> dict[str, str]:
        rows = self.cur.execute(
            f"SELECT DISTINCT ON (node_id) node_id, status FROM {META}.runs "
            f"ORDER BY node_id, queued_at DESC, id DESC").fetchall()
        return {str(n): str(s) for n, s in rows}

    def nodes_that_ran(self) -> set[str]:
        rows = self.cur.execute(f"SELECT DISTINCT node_id FROM {META}.runs").fetchall()
        return {str(r[0]) for r in rows}

    def seen_commits(self, *, succeeded_only: bool) -> dict[str, int]:
        status = ("status = 'succeeded'" if succeeded_only
                  else "status NOT IN ('queued', 'running')")
        rows = self.cur.execute(f"SELECT node_id, max(seen_commit) FROM {META}.runs "
                                f"WHERE {status} GROUP BY node_id").fetchall()  # type: ignore[arg-type]
        return {str(n): int(s) for n, s in rows}

    def fail_unfinished(self, error: str, at: dt.datetime,
                        run_ids: Sequence[str] | None = None) -> list[str]:
        only, params = ("", []) if run_ids is None else ("AND id = ANY(%s)", [list(run_ids)])
        rows = self.cur.execute(
            f"UPDATE {META}.runs SET status = 'failed', error = %s, ended_at = %s "
            f"WHERE status IN ('queued', 'running') {only} RETURNING id",  # type: ignore[arg-type]
            [error, at, *params]).fetchall()
        return sorted(str(r[0]) for r in rows)

    def add_error(self, run_ids: Sequence[str], text: str) -> None:
        self.cur.execute(
            f"UPDATE {META}.runs SET error = CASE WHEN error IS NULL OR error = '' THEN %s "
            f"ELSE error || '; ' || %s END WHERE id = ANY(%s)", [text, text, list(run_ids)])


class Queue:
    _COLUMNS = "id, node_id, trigger, not_before, attempt, parameters, enqueued_at, run_id"

    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    @staticmethod
    def _item(row: Sequence[Any]) -> QueueItem:
        return QueueItem(id=row[0], node_id=row[1], trigger=row[2], not_before=row[3],
                         attempt=int(row[4]), parameters=json.loads(row[5]) if row[5] else None,
                         enqueued_at=row[6], run_id=row[7])

    def enqueue(self, node_id: str, trigger: str, *, not_before: dt.datetime | None = None,
                attempt: int = 1, parameters: Mapping[str, Any] | None = None,
                coalesce: bool = False) -> QueueItem | None:
        from patterns.store.queue import new_item_id

        now = _now()
        if coalesce and self.cur.execute(
                f"SELECT 1 FROM {META}.run_queue WHERE node_id = %s AND run_id IS NULL "
                f"LIMIT 1", [node_id]).fetchone():
            return None
        item = QueueItem(new_item_id(), node_id, trigger, not_before or now, attempt,
                         dict(parameters) if parameters else None, now)
        self.cur.execute(
            f"INSERT INTO {META}.run_queue ({self._COLUMNS}) VALUES "
            f"(%s, %s, %s, %s, %s, %s, %s, NULL)",
            [item.id, node_id, trigger, item.not_before, attempt,
             json.dumps(item.parameters) if item.parameters else None, now])
        return item

    def items(self, *, started: bool | None = None) -> list[QueueItem]:
        where = {None: "", False: "WHERE run_id IS NULL",
                 True: "WHERE run_id IS NOT NULL"}[started]
        rows = self.cur.execute(f"SELECT {self._COLUMNS} FROM {META}.run_queue {where} "
                                f"ORDER BY not_before, enqueued_at, id").fetchall()  # type: ignore[arg-type]
        return [self._item(r) for r in rows]

    def mark_started(self, item_id: str, run_id: str) -> None:
        self.cur.execute(f"UPDATE {META}.run_queue SET run_id = %s WHERE id = %s",
                         [run_id, item_id])

    def release(self, item_id: str) -> None:
        self.cur.execute(f"UPDATE {META}.run_queue SET run_id = NULL WHERE id = %s",
                         [item_id])

    def remove(self, item_id: str) -> None:
        self.cur.execute(f"DELETE FROM {META}.run_queue WHERE id = %s", [item_id])

    def recover(self) -> list[QueueItem]:
        interrupted = self.items(started=True)
        self.cur.execute(f"UPDATE {META}.run_queue SET run_id = NULL WHERE run_id IS NOT NULL")
        return interrupted


class Schedules:
    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    def all(self) -> dict[str, Schedule]:
        rows = self.cur.execute(
            f"SELECT node_id, cron, timezone, next_fire FROM {META}.schedules").fetchall()
        return {r[0]: Schedule(r[0], r[1], r[2], r[3]) for r in rows}

    def set(self, schedule: Schedule) -> None:
        self.cur.execute(
            f"INSERT INTO {META}.schedules VALUES (%s, %s, %s, %s) ON CONFLICT (node_id) DO "
            f"UPDATE SET cron = EXCLUDED.cron, timezone = EXCLUDED.timezone, "
            f"next_fire = EXCLUDED.next_fire",
            [schedule.node_id, schedule.cron, schedule.timezone, schedule.next_fire])

    def drop(self, node_id: str) -> None:
        self.cur.execute(f"DELETE FROM {META}.schedules WHERE node_id = %s", [node_id])


class Webhooks:
    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    def tokens(self) -> dict[str, str]:
        rows = self.cur.execute(f"SELECT node_id, token FROM {META}.webhooks").fetchall()
        return {str(n): str(t) for n, t in rows}

    def ensure_token(self, node_id: str) -> str:
        self.cur.execute(f"INSERT INTO {META}.webhooks VALUES (%s, %s, %s) "
                         f"ON CONFLICT (node_id) DO NOTHING",
                         [node_id, secrets.token_urlsafe(32), _now()])
        row = self.cur.execute(f"SELECT token FROM {META}.webhooks WHERE node_id = %s",
                               [node_id]).fetchone()
        assert row is not None
        return str(row[0])


class Logs:
    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    def save(self, run_id: str, text: str, truncated: bool, *, first: bool = False) -> None:
        if first and not text and not truncated:
            return
        self.cur.execute(f"INSERT INTO {META}.run_logs VALUES (%s, %s, %s) ON CONFLICT "
                         f"(run_id) DO UPDATE SET text = EXCLUDED.text, "
                         f"truncated = EXCLUDED.truncated", [run_id, text, truncated])

    def get(self, run_id: str) -> str | None:
        row = self.cur.execute(f"SELECT text FROM {META}.run_logs WHERE run_id = %s",
                               [run_id]).fetchone()
        return str(row[0]) if row else None


class Memory:
    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    def state(self, node_id: str) -> dict[str, Any]:
        row = self.cur.execute(f"SELECT doc FROM {META}.node_state WHERE node_id = %s",
                               [node_id]).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def set_state(self, node_id: str, doc: Mapping[str, Any] | None) -> None:
        if not doc:
            self.cur.execute(f"DELETE FROM {META}.node_state WHERE node_id = %s", [node_id])
            return
        self.cur.execute(f"INSERT INTO {META}.node_state VALUES (%s, %s, %s) ON CONFLICT "
                         f"(node_id) DO UPDATE SET doc = EXCLUDED.doc, "
                         f"updated_at = EXCLUDED.updated_at",
                         [node_id, dumps(dict(doc)), _now()])

    def positions(self, node_id: str) -> dict[str, dict[str, Any]]:
        rows = self.cur.execute(f"SELECT table_name, position FROM {META}.stream_positions "
                                f"WHERE node_id = %s", [node_id]).fetchall()
        return {str(t): json.loads(p) for t, p in rows}

    def set_position(self, node_id: str, table: str,
                     position: Mapping[str, Any] | None) -> None:
        if position is None:
            self.cur.execute(f"DELETE FROM {META}.stream_positions WHERE node_id = %s "
                             f"AND table_name = %s", [node_id, table])
            return
        self.cur.execute(
            f"INSERT INTO {META}.stream_positions VALUES (%s, %s, %s, %s) ON CONFLICT "
            f"(node_id, table_name) DO UPDATE SET position = EXCLUDED.position, "
            f"updated_at = EXCLUDED.updated_at", [node_id, table, dumps(dict(position)), _now()])

    def reset_positions(self, node_id: str, table: str | None = None) -> int:
        if table is None:
            self.cur.execute(f"DELETE FROM {META}.stream_positions WHERE node_id = %s",
                             [node_id])
        else:
            self.cur.execute(f"DELETE FROM {META}.stream_positions WHERE node_id = %s "
                             f"AND table_name = %s", [node_id, table])
        return int(self.cur.rowcount)

    def all_positions(self) -> list[tuple[str, str, dict[str, Any]]]:
        rows = self.cur.execute(f"SELECT node_id, table_name, position FROM "
                                f"{META}.stream_positions ORDER BY node_id, table_name"
                                ).fetchall()
        return [(str(n), str(t), json.loads(p)) for n, t, p in rows]

    def memory(self, node_id: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        rows = self.cur.execute(
            f"SELECT NULL, doc FROM {META}.node_state WHERE node_id = %s UNION ALL "
            f"SELECT table_name, position FROM {META}.stream_positions WHERE node_id = %s",
            [node_id, node_id]).fetchall()
        state: dict[str, Any] = {}
        positions: dict[str, dict[str, Any]] = {}
        for table, doc in rows:
            if table is None:
                state = dict(json.loads(doc))
            else:
                positions[str(table)] = json.loads(doc)
        return state, positions


class Commits:
    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    def since(self, seq: int) -> list[CommitRecord]:
        rows = self.cur.execute(f"SELECT seq, table_name, node_id FROM {META}.commits "
                                f"WHERE seq > %s AND wakes ORDER BY seq, table_name",
                                [seq]).fetchall()
        return [CommitRecord(int(s), str(t), n) for s, t, n in rows]

    def last_per_table(self) -> dict[str, dt.datetime]:
        rows = self.cur.execute(f"SELECT table_name, max(committed_at) FROM {META}.commits "
                                f"GROUP BY table_name").fetchall()
        return {str(t): c for t, c in rows}


class Tables:
    _COLUMNS = ("name, version, physical, columns, id_column, created_column, unique_on, "
                "last_id, last_commit, options")

    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    @staticmethod
    def _meta(row: Sequence[Any]) -> TableMeta:
        name, version, physical, columns, id_col, created, unique, last_id, last, opts = row
        return TableMeta(
            name=name, version=version, physical=physical,
            columns=tuple(Column(c["name"], c["kind"]) for c in json.loads(columns)),
            id_column=id_col, created_column=created,
            unique_on=tuple(json.loads(unique)) if unique else None,
            last_id=last_id, last_commit=int(last),
            options=TableOptions.from_json(json.loads(opts)) if opts else TableOptions())

    def get(self, name: str) -> TableMeta | None:
        row = self.cur.execute(f"SELECT {self._COLUMNS} FROM {META}.tables WHERE name = %s",
                               [name]).fetchone()  # type: ignore[arg-type]
        return self._meta(row) if row else None

    def all(self) -> list[TableMeta]:
        rows = self.cur.execute(f"SELECT {self._COLUMNS} FROM {META}.tables "
                                f"ORDER BY name").fetchall()  # type: ignore[arg-type]
        return [self._meta(r) for r in rows]

    def versions(self, name: str) -> list[TableVersion]:
        rows = self.cur.execute(
            f"SELECT v.version, v.physical, v.created_at, v.run_id, v.reason, "
            f"to_regclass(format('%%I.%%I', '{DATA}', v.physical)) IS NOT NULL "
            f"FROM {META}.table_versions v WHERE v.name = %s ORDER BY v.version",  # type: ignore[arg-type]
            [name]).fetchall()
        return [TableVersion(int(v), str(p), c, r, why, bool(live))
                for v, p, c, r, why, live in rows]

    def count(self, meta: TableMeta) -> int:
        row = self.cur.execute(f"SELECT count(*) FROM {qualified(meta.physical)}").fetchone()  # type: ignore[arg-type]
        return int(row[0]) if row else 0
