"""Streams over more than one batch (65,536 rows): the records a node gets are exactly what
the table holds, and its position is exact wherever the loop stops, checkpoints or rolls
back — across batch boundaries, with the next batch read ahead on a thread."""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from patterns import Table
from patterns.store.reads import BATCH_ROWS

NODES = {
    "writer.py": 'from patterns import Table\nt = Table("events", "w")\n',
    "reader.py": 'from patterns import Table\nt = Table("events")\n',
}
N = BATCH_ROWS + 3_000  # two batches


@pytest.fixture
def app(app_runner: Any) -> Any:
    return app_runner(NODES, ["events"])


def write(app: Any, records: list[dict[str, Any]]) -> None:
    with app.sdk("writer"):
        Table("events", "w").append(records)


def numbered(n: int) -> list[dict[str, Any]]:
    return [{"n": i} for i in range(n)]


def same(a: Any, b: Any) -> bool:
    """Equal, of the same type, NaN equal to NaN, datetimes in the same zone."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dt.datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return bool(a == b)


def special(i: int) -> dict[str, Any]:
    """A record with a value of every awkward kind, different for each ``i``."""
    zone = ZoneInfo(["UTC", "Europe/Amsterdam", "America/New_York"][i % 3])
    return {
        "n": i,
        "big": [2**63 - 1, -(2**63), 0][i % 3],
        "ratio": [math.nan, math.inf, -0.0, 1 / 3][i % 4],
        "text": ["", "naïve ☃", "line\nbreak \"quoted\"", None][i % 4],
        "at": dt.datetime(2026, 3, 29, 1, 30, i % 60, tzinfo=zone),
        "day": dt.date(1999, 12, 31) + dt.timedelta(days=i % 5),
        "doc": [{"deep": {"id": 2**70 + i, "tags": ["a", None]}},
                {"nan": math.nan, "list": [1, 2.5, True, None]},
                None,
                {"city": "Osaka", "zip": str(i)}][i % 4],
        "maybe": None if i % 2 else i,
    }


def expected_rows(app: Any) -> list[dict[str, Any]]:
    """The table as Arrow's ``to_pylist`` reads it, JSON columns parsed by ``json``."""
    meta = app.engine.store.table("events")
    names = ", ".join(f'"{n}"' for n in meta.visible_names())
    rows = app.engine.store.arrow(
        f'SELECT {names} FROM main."events" ORDER BY patterns_id').to_pylist()
    for row in rows:
        for col in meta.json_columns():
            if row[col] is not None:
                row[col] = json.loads(row[col])
    return rows


def test_records_across_batches_are_exactly_what_the_table_holds(app: Any) -> None:
    records = [special(i) if i < 40 or abs(i - BATCH_ROWS) < 40 else {"n": i}
               for i in range(N)]
    write(app, records)
    with app.sdk("reader"):
        got = list(Table("events").as_stream().consume_records())
    want = expected_rows(app)
    assert len(got) == len(want) == N
    assert all(type(r) is dict for r in got)
    for g, w in zip(got, want, strict=True):
        assert same(g, w), (g, w)
    doc = got[BATCH_ROWS - 4]["doc"]  # (i % 4 == 0: the nested dict with a 71-bit id)
    assert doc["deep"]["id"] == 2**70 + BATCH_ROWS - 4 and type(doc["deep"]["id"]) is int


def test_a_loop_stopped_in_the_second_batch_resumes_after_its_last_record(app: Any) -> None:
    write(app, numbered(N))
    stop = BATCH_ROWS + 10
    with app.sdk("reader"):
        for record in Table("events").as_stream().consume_records():
            if record["n"] == stop:
                break
    with app.sdk("reader"):
        rest = [r["n"] for r in Table("events").as_stream().consume_records()]
    assert rest == list(range(stop + 1, N))


def test_a_checkpoint_on_a_batch_boundary_keeps_the_batch_before(app: Any) -> None:
    write(app, numbered(N))
    with app.sdk("reader"):
        stream = Table("events").as_stream()
        records = stream.consume_records()
        last = [next(records)["n"] for _ in range(BATCH_ROWS)][-1]
        stream.checkpoint()  # the first batch is done; the second not begun
        stream.rollback()
        again = next(records)["n"]
    assert (last, again) == (BATCH_ROWS - 1, BATCH_ROWS)
    with app.sdk("reader"):
        rest = [r["n"] for r in Table("events").as_stream().consume_records()]
    assert rest == list(range(BATCH_ROWS + 1, N))


def test_rollback_in_the_second_batch_redelivers_from_the_first(app: Any) -> None:
    write(app, numbered(N))
    seen: list[int] = []
    with app.sdk("reader"):
        stream = Table("events").as_stream()
        rolled = False
        for record in stream.consume_records():
            seen.append(record["n"])
            if record["n"] == 99:
                stream.checkpoint()
            if record["n"] == BATCH_ROWS + 5 and not rolled:
                rolled = True
                stream.rollback()
    assert seen == list(range(BATCH_ROWS + 6)) + list(range(100, N))


def test_a_failed_run_delivers_again_what_it_did_not_checkpoint(app: Any) -> None:
    write(app, numbered(N))
    with pytest.raises(RuntimeError), app.sdk("reader"):
        stream = Table("events").as_stream()
        for record in stream.consume_records():
            if record["n"] == 999:
                stream.checkpoint()
            if record["n"] == BATCH_ROWS + 1:
                raise RuntimeError("the node failed")
    with app.sdk("reader"):
        rest = [r["n"] for r in Table("events").as_stream().consume_records()]
    assert rest == list(range(1_000, N))


def test_a_loop_left_early_leaves_no_reading_thread(app: Any) -> None:
    write(app, numbered(N))
    with app.sdk("reader"):
        for _ in zip(range(10), Table("events").as_stream().consume_records(), strict=False):
            pass
    names = {"patterns-read-ahead", "patterns-checkpoint-alarm"}
    deadline = 50
    while any(t.name in names for t in threading.enumerate()) and deadline:
        threading.Event().wait(0.1)
        deadline -= 1
    assert not any(t.name in names for t in threading.enumerate())


def test_an_automatic_checkpoint_comes_between_two_records_of_a_slice(app_runner: Any) -> None:
    # Records are made a slice (thousands) at a time; a slow loop still checkpoints when the
    # interval has passed, between two records, and a failure after it loses only what came
    # after.
    app = app_runner(NODES, ["events"], settings={"checkpoint_seconds": 0.2})
    write(app, numbered(1_000))
    got: list[int] = []
    with pytest.raises(RuntimeError), app.sdk("reader"):
        records = Table("events").as_stream().consume_records()
        deadline = time.monotonic() + 30
        while app.session.checkpoints == 0 and time.monotonic() < deadline:
            got.append(next(records)["n"])
            threading.Event().wait(0.02)  # (a slow node: 20 ms a record)
        raise RuntimeError(f"the node failed after record {got[-1]}")
    assert app.session.checkpoints == 1 and 1 < len(got) < 1_000
    with app.sdk("reader"):
        rest = [r["n"] for r in Table("events").as_stream().consume_records()]
    # (the checkpoint came as the loop asked for got[-1]: it holds the records before it)
    assert rest == list(range(got[-1], 1_000))
