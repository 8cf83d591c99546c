"""A local run's stream pass starts on its control channel (patterns/engine/stream_start.py):
the first batch comes with the pass's position, the rest over Flight. Records come exactly
once and in order either way; a pass of one batch makes no Flight connection; a run that
stops in the middle of a pass leaves no read open in the engine, and its next run goes on
from its checkpoint."""

from __future__ import annotations

import json
from typing import Any

FILL = """
import pyarrow as pa
from patterns import Parameter, Table

start = Parameter("start", type=int, default=0)
n = Parameter("n", type=int, default=0)
Table("src", "w").append(pa.table({"n": pa.array(range(start, start + n), pa.int64())}))
"""

CONSUME = """
import json
from patterns import Table
from patterns.sdk._context import current_run

seen = [r["n"] for r in Table("src").as_stream().consume_records()]
client = current_run.get().client
print(json.dumps({"count": len(seen), "first": seen[:1], "last": seen[-1:],
                  "in_order": seen == sorted(set(seen)),
                  "flight": client._connection is not None}))
"""

STOPS_EARLY = """
import json
from patterns import Table

stream = Table("src").as_stream()
for record in stream.consume_records():
    stream.checkpoint()
    print(json.dumps({"got": record["n"]}))
    break
"""


def fill(app: Any, start: int, n: int) -> None:
    record = app.engine.run_node(app.app.node("fill.py"), "manual",
                                 {"start": start, "n": n})[0]
    assert record.status == "succeeded", record.error


def report(app: Any, record: Any) -> dict[str, Any]:
    assert record.status == "succeeded", record.error
    lines = [json.loads(line)[2] for line in (app.log(record.id) or "").splitlines()]
    return dict(json.loads(next(line for line in lines if line.startswith("{"))))


def test_a_pass_of_one_batch_comes_on_the_channel_and_more_over_flight(
        app_runner: Any) -> None:
    app = app_runner({"fill.py": FILL, "consume.py": CONSUME}, ["src"])
    fill(app, 0, 1_000)
    assert report(app, app.run_node("consume")) == {
        "count": 1_000, "first": [0], "last": [999], "in_order": True, "flight": False}
    fill(app, 1_000, 150_000)  # (three batches of 65,536 rows at most)
    assert report(app, app.run_node("consume")) == {
        "count": 150_000, "first": [1_000], "last": [150_999], "in_order": True,
        "flight": True}
    assert report(app, app.run_node("consume"))["count"] == 0
    assert app.engine.dataplane._parked._reads == {}


def test_a_run_that_stops_mid_pass_leaves_no_read_open_and_the_next_goes_on(
        app_runner: Any) -> None:
    app = app_runner({"fill.py": FILL, "stops.py": STOPS_EARLY}, ["src"])
    fill(app, 0, 140_000)
    assert report(app, app.run_node("stops")) == {"got": 0}
    assert app.engine.dataplane._parked._reads == {}  # (the rest of the pass was parked)
    # The node's next run goes on after its checkpoint: nothing lost, nothing twice.
    assert report(app, app.run_node("stops")) == {"got": 1}
    assert app.engine.dataplane._parked._reads == {}


def _memfds() -> int:
    """The memfds this process (the engine's) holds open."""
    import contextlib
    import os

    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # (a descriptor closed meanwhile)
            count += "memfd:" in os.readlink(f"/proc/self/fd/{fd}")
    return count


def test_a_big_first_batch_comes_in_shared_memory_and_none_is_left_open(
        app_runner: Any) -> None:
    # A first batch of 256 KB or more is passed as a sealed memfd with the channel's answer
    # (the node maps it); the engine lets its descriptor go once sent.
    app = app_runner({"fill.py": FILL, "consume.py": CONSUME}, ["src"])
    before = _memfds()
    fill(app, 0, 40_000)  # (40,000 ids and numbers: over 256 KB, one batch)
    assert report(app, app.run_node("consume")) == {
        "count": 40_000, "first": [0], "last": [39_999], "in_order": True, "flight": False}
    fill(app, 40_000, 100_000)  # (a first batch in a memfd, the rest over Flight)
    assert report(app, app.run_node("consume")) == {
        "count": 100_000, "first": [40_000], "last": [139_999], "in_order": True,
        "flight": True}
    assert _memfds() == before


WARM = """
import json
import sys

print(json.dumps({"orjson": "orjson" in sys.modules}))
"""


def test_a_warm_workers_run_finds_the_json_parser_ready(app_runner: Any) -> None:
    # The warm worker made a stream batch's records before it forked: a run's first batch
    # does not pay for importing the JSON parser and setting up Arrow's kernels.
    import importlib.util

    app = app_runner({"warm.py": WARM}, [])
    assert report(app, app.run_node("warm")) == {
        "orjson": importlib.util.find_spec("orjson") is not None}
