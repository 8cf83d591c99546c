"""A run's first stream pass is read while its process starts
(patterns/engine/stream_prefetch.py): the node gets the same records, exactly once and in
order, whether it asks for that pass, another one (after ``rewind()``), or none; rows
committed after the read ahead still come in the same run; a run's rows read count only
what the node took; nothing is left open in the engine."""

from __future__ import annotations

import json
from typing import Any

from tests.engine.test_stream_start import _memfds

FILL = """
import pyarrow as pa
from patterns import Parameter, Table

start = Parameter("start", type=int, default=0)
n = Parameter("n", type=int, default=0)
Table("src", "w").append(pa.table({"n": pa.array(range(start, start + n), pa.int64())}))
"""

#: ``mode``: consume (the usual run), skip (streams nothing this time), rewind (asks for
#: another pass than the one read ahead), write (commits rows to the table it streams
#: before it asks: they are not in the pass read ahead).
CONSUME = """
import json
import pyarrow as pa
from patterns import Parameter, Table

mode = Parameter("mode", type=str, default="consume")
src = Table("src", "w")
seen = []
if mode != "skip":
    stream = src.as_stream()
    if mode == "rewind":
        stream.rewind()
    if mode == "write":
        src.append(pa.table({"n": pa.array([-1, -2], pa.int64())}))
        stream.checkpoint()
    seen = [r["n"] for r in stream.consume_records()]
print(json.dumps({"seen": seen}))
"""


def fill(app: Any, start: int, n: int) -> None:
    record = app.engine.run_node(app.app.node("fill.py"), "manual",
                                 {"start": start, "n": n})[0]
    assert record.status == "succeeded", record.error


def consume(app: Any, mode: str = "consume") -> tuple[list[int], dict[str, int]]:
    """What the run got, and its rows read as recorded."""
    app.reload()
    record = app.engine.run_node(app.app.node("consume.py"), "manual", {"mode": mode})[0]
    assert record.status == "succeeded", record.error
    lines = [json.loads(line)[2] for line in (app.log(record.id) or "").splitlines()]
    seen = json.loads(next(line for line in lines if line.startswith("{")))["seen"]
    return seen, dict(app.stored_run(record.id).rows_read or {})


def served(app: Any) -> int:
    return int(app.engine.dataplane._prefetches.served)


def test_the_pass_read_ahead_is_the_one_the_node_asked_for(app_runner: Any) -> None:
    app = app_runner({"fill.py": FILL, "consume.py": CONSUME}, ["src"])
    fill(app, 0, 100)
    assert consume(app) == (list(range(100)), {"src": 100})  # (no position yet: no read ahead)
    assert served(app) == 0
    fill(app, 100, 30)
    assert consume(app) == (list(range(100, 130)), {"src": 30})
    assert served(app) == 1  # (the node's pass was the one read while it started)
    fill(app, 130, 150_000)  # a pass of three batches: the rest over Flight
    seen, read = consume(app)
    assert seen == list(range(130, 150_130)) and read == {"src": 150_000}
    assert served(app) == 2
    assert consume(app) == ([], {})
    assert app.engine.dataplane._parked._reads == {}
    assert app.engine.dataplane._prefetches._ahead == {}
    assert app.engine.dataplane._prefetches._asked == {}


def test_a_run_that_streams_nothing_counts_nothing_and_loses_nothing(
        app_runner: Any) -> None:
    app = app_runner({"fill.py": FILL, "consume.py": CONSUME}, ["src"])
    fill(app, 0, 10)
    consume(app)
    before = _memfds()
    fill(app, 10, 140_000)  # (read ahead: its first batch in a memfd, the rest parked)
    assert consume(app, "skip") == ([], {})
    assert app.engine.dataplane._parked._reads == {}
    assert _memfds() == before  # (the answer not taken let its memfd go with the run)
    seen, read = consume(app)  # the position did not move: the rows come now, once
    assert seen == list(range(10, 140_010)) and read == {"src": 140_000}


def test_a_node_asking_for_another_pass_gets_that_one(app_runner: Any) -> None:
    app = app_runner({"fill.py": FILL, "consume.py": CONSUME}, ["src"])
    fill(app, 0, 10)
    consume(app)
    fds = _memfds()
    fill(app, 10, 70_000)  # (more than a batch: the pass read ahead parks a reader)
    before = served(app)
    seen, read = consume(app, "rewind")
    assert seen == list(range(70_010)) and read == {"src": 70_010}
    assert served(app) == before  # (the pass read ahead was not the one asked for)
    assert app.engine.dataplane._parked._reads == {}
    assert _memfds() == fds
    assert consume(app) == ([], {})


def test_rows_committed_after_the_read_ahead_come_in_the_same_run(app_runner: Any) -> None:
    app = app_runner({"fill.py": FILL, "consume.py": CONSUME}, ["src"])
    fill(app, 0, 10)
    consume(app)
    fill(app, 10, 5)
    # The node commits two rows to the table before it asks for its pass: the pass read
    # ahead ended before them; the loop's next pass brings them, in commit order.
    assert consume(app, "write") == ([10, 11, 12, 13, 14, -1, -2], {"src": 7})
    assert consume(app) == ([], {})


def test_a_run_without_tables_reads_nothing_ahead(app_runner: Any) -> None:
    # A node with no table of the store's (a trivial run) has no pass to read: its run
    # does not wake the read ahead's thread (it is not even made).
    app = app_runner({"noop.py": "print('done')\n"}, [])
    for _ in range(3):
        record = app.engine.run_node(app.app.node("noop.py"), "manual")[0]
        assert record.status == "succeeded", record.error
    assert app.engine.dataplane._prefetches._pool is None
    assert app.engine.dataplane._prefetches._ahead == {}
