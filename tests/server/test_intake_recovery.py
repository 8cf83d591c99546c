"""Acknowledged webhook records survive kill -9 at the worst moments: after the intake
journal's fsync but before any store commit, and in the middle of the replay that follows;
on the DuckDB store and on PostgreSQL. Each record acknowledged lands exactly once."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.server.conftest import Server, write_app

GRAPH = """
title: Intake
functions:
  - webhook: events
    id: events01
  - webhook: clicks
    id: clicks01
stores:
  - table: events
  - table: clicks
"""

PAUSED_COMMIT = "paused before committing"
PAUSED_REPLAY = "paused after the first commit of the replay"


def hooks(server: Server) -> dict[str, str]:
    return {h["table"]: f"{server.url}{h['path']}" for h in server.get("/apps/intake/webhooks")}


def post_all(urls: dict[str, str], count: int) -> dict[str, list[int]]:
    """``count`` records to each webhook, interleaved, from 8 clients; the acked ones."""
    jobs = [(table, n) for n in range(count) for table in sorted(urls)]

    def post(job: tuple[str, int]) -> tuple[str, int, int]:
        table, n = job
        body = [{"n": n, "tag": f"{table}-{n}"}] if n % 3 else {"n": n, "tag": f"{table}-{n}"}
        return table, n, requests.post(urls[table], json=body, timeout=60).status_code

    acked: dict[str, list[int]] = {table: [] for table in urls}
    with ThreadPoolExecutor(8) as pool:
        for table, n, status in pool.map(post, jobs):
            assert status == 200, (table, n, status)
            acked[table].append(n)
    return acked


def wait_for_line(server: Server, text: str) -> None:
    server.wait_for(lambda: any(text in line for line in server.output), 60, text)


def restart(server: Server, pause: str | None) -> None:
    server.env.pop("PATTERNS_INTAKE_PAUSE", None)
    if pause:
        server.env["PATTERNS_INTAKE_PAUSE"] = pause
    server.start()


def stored(server: Server, table: str) -> list[int]:
    return sorted(r["n"] for r in server.rows("intake", table))


def kill_between_fsync_and_commit(server: Server, count: int) -> dict[str, list[int]]:
    """Records posted to a server that journals and acks them but commits none (it was
    started with PATTERNS_INTAKE_PAUSE=commit), then killed; the acked ones."""
    acked = post_all(hooks(server), count)
    wait_for_line(server, PAUSED_COMMIT)
    server.kill()
    return acked


@pytest.mark.slow
def test_records_acked_then_killed_before_their_store_commit_land_once(
        tmp_path: Path, serve: Any) -> None:
    root = write_app(tmp_path / "intake", GRAPH, {})
    server = serve(root, env={"PATTERNS_INTAKE_PAUSE": "commit"})
    acked = kill_between_fsync_and_commit(server, 60)
    from patterns.store.duckdb import DuckDBStore

    store = DuckDBStore(root / ".patterns" / "store.duckdb", read_only=True)
    try:  # killed before any commit: the store has none of them...
        assert store.table("events") is None and store.table("clicks") is None
    finally:
        store.close()
    journal = root / ".patterns" / "intake.journal"
    assert journal.stat().st_size > 60 * 2 * 20  # ...the journal has them...
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    restart(server, None)  # ...and the restart commits them
    for table in ("events", "clicks"):
        assert stored(server, table) == sorted(acked[table]), table
    # The journal is rotated once committed; another restart adds nothing.
    server.stop()
    assert journal.stat().st_size < 100
    restart(server, None)
    for table in ("events", "clicks"):
        assert stored(server, table) == sorted(acked[table]), table
    url = hooks(server)["events"]
    assert requests.post(url, json={"n": 1000}, timeout=30).status_code == 200
    assert stored(server, "events") == sorted([*acked["events"], 1000])


@pytest.mark.slow
def test_a_replay_killed_half_way_is_finished_by_the_next_start_exactly_once(
        tmp_path: Path, serve: Any) -> None:
    root = write_app(tmp_path / "intake", GRAPH, {})
    server = serve(root, env={"PATTERNS_INTAKE_PAUSE": "commit"})
    acked = kill_between_fsync_and_commit(server, 40)
    restart(server, "replay")  # one node's records committed, then killed
    wait_for_line(server, PAUSED_REPLAY)
    server.kill()
    restart(server, None)
    for table in ("events", "clicks"):
        assert stored(server, table) == sorted(acked[table]), table


@pytest.mark.slow
def test_on_postgresql_acked_records_killed_before_their_commit_land_once(
        tmp_path: Path, serve: Any, postgres_url: str) -> None:
    root = write_app(tmp_path / "intake", GRAPH, {})
    server = serve(root, args=("--store", postgres_url),
                   env={"PATTERNS_INTAKE_PAUSE": "commit"})
    acked = kill_between_fsync_and_commit(server, 30)
    restart(server, "replay")
    wait_for_line(server, PAUSED_REPLAY)
    server.kill()
    restart(server, None)
    for table in ("events", "clicks"):
        assert stored(server, table) == sorted(acked[table]), table
