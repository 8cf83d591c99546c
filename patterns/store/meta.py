"""Platform metadata kept next to the data: run records, logs, node state, stream positions."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import duckdb

from patterns.store.migrations import META
from patterns.store.model import RunRecord, dumps

_RUN_COLUMNS = ("id, node_id, node_title, trigger, status, queued_at, started_at, ended_at, "
                "attempt, parameters, seen_commit, rows_read, rows_written, checkpoints, "
                "exit_code, error, traceback")


def _loads(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else text


def _run(row: tuple[Any, ...]) -> RunRecord:
    (rid, node_id, title, trigger, status, queued, started, ended, attempt, params, seen,
     rows_read, rows_written, checkpoints, exit_code, error, tb) = row
    return RunRecord(
        id=rid, node_id=node_id, node_title=title, trigger=trigger, status=status,
        queued_at=queued, started_at=started, ended_at=ended, attempt=attempt,
        parameters=_loads(params), seen_commit=seen, rows_read=_loads(rows_read),
        rows_written=_loads(rows_written), checkpoints=checkpoints, exit_code=exit_code,
        error=error, traceback=tb,
    )


def insert_run(cur: duckdb.DuckDBPyConnection, run: RunRecord) -> None:
    cur.execute(
        f"INSERT INTO {META}.runs ({_RUN_COLUMNS}) VALUES "
        f"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run.id, run.node_id, run.node_title, run.trigger, run.status, run.queued_at,
         run.started_at, run.ended_at, run.attempt,
         dumps(run.parameters) if run.parameters is not None else None, run.seen_commit,
         dumps(run.rows_read or {}), dumps(run.rows_written or {}), run.checkpoints,
         run.exit_code, run.error, run.traceback],
    )


def update_run(cur: duckdb.DuckDBPyConnection, run_id: str, **fields: Any) -> bool:
    """Change fields of a run's record; False if there is no such record."""
    sets, values = [], []
    for key, value in fields.items():
        sets.append(f"{key} = ?")
        values.append(dumps(value) if key in ("rows_read", "rows_written", "parameters")
                      else value)
    rows = cur.execute(f"UPDATE {META}.runs SET {', '.join(sets)} WHERE id = ? RETURNING id",
                       [*values, run_id]).fetchall()
    return bool(rows)


def get_run(cur: duckdb.DuckDBPyConnection, run_id: str) -> RunRecord | None:
    row = cur.execute(f"SELECT {_RUN_COLUMNS} FROM {META}.runs WHERE id = ? "
                      f"OR starts_with(id, ?) OR ends_with(id, ?)",
                      [run_id, run_id, run_id]).fetchall()
    return _run(row[0]) if len(row) == 1 else None


def list_runs(cur: duckdb.DuckDBPyConnection, node_id: str | None = None,
              limit: int = 50) -> list[RunRecord]:
    where, params = ("WHERE node_id = ?", [node_id]) if node_id else ("", [])
    rows = cur.execute(
        f"SELECT {_RUN_COLUMNS} FROM {META}.runs {where} ORDER BY queued_at DESC, id DESC "
        f"LIMIT ?", [*params, limit]).fetchall()
    return [_run(r) for r in rows]


def last_success(cur: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """For each node, the commit sequence its last successful run had seen at its start."""
    rows = cur.execute(
        f"SELECT node_id, max(seen_commit) FROM {META}.runs WHERE status = 'succeeded' "
        f"GROUP BY node_id").fetchall()
    return {node: int(seen) for node, seen in rows}


def save_log(cur: duckdb.DuckDBPyConnection, run_id: str, text: str, truncated: bool, *,
             first: bool = False) -> None:
    """Save a run's log (``first``: the run has none saved yet; an empty one is then not
    written at all, :func:`get_log` gives None)."""
    if not first:
        cur.execute(f"DELETE FROM {META}.run_logs WHERE run_id = ?", [run_id])
    elif not text and not truncated:
        return
    cur.execute(f"INSERT INTO {META}.run_logs VALUES (?, ?, ?)", [run_id, text, truncated])


def get_log(cur: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    row = cur.execute(f"SELECT text FROM {META}.run_logs WHERE run_id = ?", [run_id]).fetchall()
    return str(row[0][0]) if row else None


def get_state(cur: duckdb.DuckDBPyConnection, node_id: str) -> dict[str, Any]:
    row = cur.execute(f"SELECT doc FROM {META}.node_state WHERE node_id = ?",
                      [node_id]).fetchall()
    return dict(json.loads(row[0][0])) if row else {}


def set_state(cur: duckdb.DuckDBPyConnection, node_id: str, doc: Mapping[str, Any],
              now: dt.datetime) -> None:
    cur.execute(f"DELETE FROM {META}.node_state WHERE node_id = ?", [node_id])
    if doc:
        cur.execute(f"INSERT INTO {META}.node_state VALUES (?, ?, ?)",
                    [node_id, dumps(dict(doc)), now])


def get_positions(cur: duckdb.DuckDBPyConnection, node_id: str) -> dict[str, dict[str, Any]]:
    rows = cur.execute(f"SELECT table_name, position FROM {META}.stream_positions "
                       f"WHERE node_id = ?", [node_id]).fetchall()
    return {name: json.loads(pos) for name, pos in rows}


def set_position(cur: duckdb.DuckDBPyConnection, node_id: str, table: str,
                 position: Mapping[str, Any] | None, now: dt.datetime) -> None:
    cur.execute(f"DELETE FROM {META}.stream_positions WHERE node_id = ? AND table_name = ?",
                [node_id, table])
    if position is not None:
        cur.execute(f"INSERT INTO {META}.stream_positions VALUES (?, ?, ?, ?)",
                    [node_id, table, dumps(dict(position)), now])


def get_memory(cur: duckdb.DuckDBPyConnection, node_id: str
               ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A node's state and stream positions, in one query (what a run starts from)."""
    rows = cur.execute(
        f"SELECT NULL, doc FROM {META}.node_state WHERE node_id = ? UNION ALL "
        f"SELECT table_name, position FROM {META}.stream_positions WHERE node_id = ?",
        [node_id, node_id]).fetchall()
    state: dict[str, Any] = {}
    positions: dict[str, dict[str, Any]] = {}
    for table, doc in rows:
        if table is None:
            state = dict(json.loads(doc))
        else:
            positions[table] = json.loads(doc)
    return state, positions


def all_positions(cur: duckdb.DuckDBPyConnection) -> list[tuple[str, str, dict[str, Any]]]:
    rows = cur.execute(f"SELECT node_id, table_name, position FROM {META}.stream_positions "
                       f"ORDER BY node_id, table_name").fetchall()
    return [(n, t, json.loads(p)) for n, t, p in rows]


def commits_since(cur: duckdb.DuckDBPyConnection, seq: int) -> list[tuple[int, str, str | None]]:
    """(seq, table, node) of every commit after ``seq`` that added or replaced rows and
    wakes readers (a run that asked ``request_new_run(trigger_downstream=False)`` does not)."""
    rows = cur.execute(f"SELECT seq, table_name, node_id FROM {META}.commits WHERE seq > ? "
                       f"AND wakes ORDER BY seq", [seq]).fetchall()
    return [(int(s), t, n) for s, t, n in rows]
