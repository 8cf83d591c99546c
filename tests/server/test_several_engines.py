"""Two `patterns serve` engines on one PostgreSQL store: webhooks to both, a streaming reader
run by whichever engine claims it, each record processed exactly once, never two runs of a
node at once; then one engine is killed (kill -9) mid-run and the other, once the dead one's
leases expire, takes its runs over and the totals come out exact."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.server.conftest import write_app

GRAPH = """
title: Shared
slug: shared
functions:
  - webhook: events
    id: hook0001
  - node_file: tally.py
    id: tally001
stores:
  - table: events
  - table: seen
"""

#: Slow on purpose (so a run is under way when an engine is killed); a checkpoint every
#: few records (rows and stream position committed together).
TALLY = """
import time
from patterns import Table
events = Table("events")
seen = Table("seen", "w")
stream = events.as_stream()
for i, record in enumerate(stream.consume_records()):
    seen.append({"n": record["n"]})
    time.sleep(0.01)
    if i % 5 == 4:
        stream.checkpoint()
"""

LEASE_SECONDS = 3


def _apps(tmp_path: Path) -> tuple[Path, Path]:
    """The same app on two "machines" (two folders)."""
    one = write_app(tmp_path / "one" / "shared", GRAPH, {"tally.py": TALLY})
    two = tmp_path / "two" / "shared"
    shutil.copytree(one, two)
    return one, two


def _overlaps(runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of runs of one node whose time ranges overlap."""
    spans = sorted((dt.datetime.fromisoformat(r["started_at"]),
                    dt.datetime.fromisoformat(r["ended_at"]), r["id"])
                   for r in runs if r["started_at"] and r["ended_at"])
    return [(a[2], b[2]) for a, b in itertools.pairwise(spans) if b[0] < a[1]]


def _holder(postgres_url: str, node: str) -> str | None:
    """The engine holding the node's lease now (read from the store, as an operator would)."""
    import psycopg

    with psycopg.connect(postgres_url) as con:
        row = con.execute("SELECT holder FROM patterns_meta.leases WHERE name = %s AND "
                          "expires_at > clock_timestamp()", [f"node:{node}"]).fetchone()
    return str(row[0]) if row else None


def _engine_id(root: Path) -> str:
    return str(json.loads((root / ".patterns" / "engine.json").read_text())["engine_id"])


@pytest.mark.timeout(300)
def test_two_engines_share_a_store_and_one_takes_over_when_the_other_is_killed(
        tmp_path: Path, postgres_url: str, serve: Any) -> None:
    one, two = _apps(tmp_path)
    env = {"PATTERNS_LEASE_SECONDS": str(LEASE_SECONDS)}
    a = serve(one, args=("--store", postgres_url), env=env)
    b = serve(two, args=("--store", postgres_url), env=env)
    (hook,) = a.get("/apps/shared/webhooks")
    assert b.get("/apps/shared/webhooks") == [hook]  # (the token lives in the store)
    ids = {_engine_id(one): a, _engine_id(two): b}
    assert len(ids) == 2

    sent: list[int] = []

    def send(server: Any, first: int, count: int) -> None:
        for start in range(first, first + count, 10):
            batch = [{"n": n} for n in range(start, min(start + 10, first + count))]
            response = requests.post(f"{server.url}{hook['path']}", json=batch, timeout=30)
            assert response.status_code == 200, response.text
            sent.extend(r["n"] for r in batch)

    # Webhooks to both engines, in turns: both run the reader, never at once.
    for k in range(6):
        send(a if k % 2 == 0 else b, k * 40, 40)
        time.sleep(0.3)
    a.wait_for(lambda: len(a.rows("shared", "seen")) >= len(sent), timeout=120,
               what="the reader to see every record")
    # Then a big batch, and the engine running the reader is killed mid-run.
    send(a, 1000, 600)
    # (an API read waits until the engine has committed what its webhooks acknowledged: the
    # intake journal is on its own machine, so only committed records can pass to the other)
    a.runs("shared", "tally.py")
    holder = a.wait_for(lambda: _holder(postgres_url, "tally001"), timeout=60,
                        what="a run of the reader to start")
    victim = ids[holder]
    survivor = b if victim is a else a
    survivor.wait_for(lambda: max(r["n"] for r in survivor.rows("shared", "seen")) > 1000,
                      timeout=60, what="the run to commit a checkpoint")
    victim.kill()
    # ...the survivor takes over once the lease has expired, and finishes the stream.
    survivor.wait_for(lambda: len(survivor.rows("shared", "seen")) >= len(sent), timeout=120,
                      what="the survivor to process every record")
    time.sleep(LEASE_SECONDS)  # (anything more, doubled, would show by now)
    seen = [r["n"] for r in survivor.rows("shared", "seen")]
    assert sorted(seen) == sorted(sent), (
        f"{len(seen) - len(set(seen))} records processed twice, "
        f"{len(set(sent) - set(seen))} never")
    runs = survivor.runs("shared", "tally.py")
    assert not [r for r in runs if r["status"] == "running"]
    lost = [r for r in runs if r["status"] == "failed" and "engine stopped" in r["error"]]
    assert lost and all("runs again" in r["error"] for r in lost), runs
    assert not _overlaps(runs), "two runs of the reader overlapped"
