"""A local run's control channel (patterns/sdk/_channel.py, patterns/engine/channel.py): the
socket a warm worker's run talks to the engine on. What a node does to it (cut a message
short by dying, write garbage into it, forge a token) fails that run at most: nothing of it
is committed, and the engine goes on running the next one."""

from __future__ import annotations

import json
from typing import Any

WRITES = """
from patterns import Table
Table("out", "w").append([{"n": i} for i in range(100)])
"""

DIES_MID_MESSAGE = """
import os, signal
from patterns import Table
from patterns.sdk._context import current_run

channel = current_run.get().client._channel
real = channel._sock


class DiesHalfwayThrough:
    def sendall(self, data):  # the process is killed in the middle of its checkpoint
        data = bytes(data)
        real.sendall(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)

    def __getattr__(self, name):
        return getattr(real, name)


channel._sock = DiesHalfwayThrough()
Table("out", "w").append([{"n": i} for i in range(1000)])
"""

GARBAGE = """
import os
from patterns import Table
from patterns.sdk._context import current_run

fd = current_run.get().client._channel._sock.fileno()
os.write(fd, bytes(range(256)) * 4)
Table("out", "w").append({"n": 1})
"""

HUGE_FRAME = """
import os, struct
from patterns import Table
from patterns.sdk._context import current_run

fd = current_run.get().client._channel._sock.fileno()
os.write(fd, struct.pack("!II", 0xFFFFFFFF, 0xFFFFFFFF))
Table("out", "w").append({"n": 1})
"""

FORGED = """
from patterns import Table
from patterns.sdk._context import current_run

channel = current_run.get().client._channel
print(json.dumps(channel.request({"action": "checkpoint", "token": "forged", "state": None,
                                  "positions": {}, "final": True})))
token = current_run.get().client._token
print(json.dumps(channel.request({"action": "no-such-action", "token": token})))
Table("out", "w").append({"n": 1})
""".replace("from patterns import Table", "import json\nfrom patterns import Table")

CHILD_FDS = """
import subprocess, sys
from patterns import Table
out = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.readlink('/proc/self/fd/' + f) for f in os.listdir('/proc/self/fd')))"], capture_output=True, text=True).stdout
print("child sees", out.strip())
Table("out", "w").append({"n": 1})
"""


BIG_WRITE = """
from patterns import Table
from patterns.sdk._context import current_run

out = Table("out", "w")
out.append([{"n": i, "text": "x" * 40 + str(i)} for i in range(200_000)])  # ~10 MB
out.flush()
print("flight connected:", current_run.get().client._connection is not None)
"""

BIG_WRITE_NO_ROOM = """
import resource
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # (a memfd is a file)
""" + BIG_WRITE

UNSEALED = """
import os
from patterns import Table
from patterns.sdk import _channel
from patterns.sdk._context import current_run

real = _channel.shared_ipc


def unsealed(data):  # the same data in a memfd without seals: the node could change it
    fd, size = real(data)
    copy = os.memfd_create("unsealed")
    os.write(copy, os.pread(fd, size, 0))
    os.close(fd)
    return copy, size


_channel.shared_ipc = unsealed
import patterns.sdk._flight as flight_client
flight_client.shared_ipc = unsealed
Table("out", "w").append([{"n": i, "text": "x" * 40 + str(i)} for i in range(200_000)])
"""


def log_lines(app: Any, record: Any) -> list[str]:
    return [json.loads(line)[2] for line in (app.log(record.id) or "").splitlines()]


def test_a_local_run_writes_and_commits_over_its_channel(app_runner: Any) -> None:
    app = app_runner({"writes.py": WRITES}, ["out"])
    record = app.run_node("writes")
    assert record.status == "succeeded", record.error
    assert [r["n"] for r in app.rows("out")] == list(range(100))
    assert record.rows_written == {"out": 100}


def test_a_run_killed_in_the_middle_of_a_message_commits_nothing(app_runner: Any) -> None:
    app = app_runner({"dies.py": DIES_MID_MESSAGE, "writes.py": WRITES}, ["out"])
    record = app.run_node("dies")
    assert record.status == "failed"
    assert app.rows("out") == [], "a checkpoint cut short was committed"
    # The engine goes on: the next run talks to it and commits.
    assert app.run_node("writes").status == "succeeded"
    assert len(app.rows("out")) == 100


def test_garbage_on_the_channel_fails_that_run_only(app_runner: Any) -> None:
    app = app_runner({"garbage.py": GARBAGE, "huge.py": HUGE_FRAME, "writes.py": WRITES},
                     ["out"])
    for node in ("garbage", "huge"):
        record = app.run_node(node)
        assert record.status == "failed", node
        assert "control channel" in (record.error or ""), record.error
        assert app.rows("out") == []
    assert app.run_node("writes").status == "succeeded"
    assert len(app.rows("out")) == 100


def test_a_forged_token_or_unknown_request_is_refused_and_the_run_goes_on(
        app_runner: Any) -> None:
    app = app_runner({"forged.py": FORGED}, ["out"])
    record = app.run_node("forged")
    assert record.status == "succeeded", record.error
    refused, unknown = (json.loads(line) for line in log_lines(app, record)[:2])
    assert "token is not valid" in refused["error"]
    assert "unknown action no-such-action" in unknown["error"]
    assert app.rows("out")[0]["n"] == 1  # nothing of the forged checkpoint, the rest kept


def test_processes_a_node_starts_do_not_inherit_its_channel(app_runner: Any) -> None:
    app = app_runner({"child.py": CHILD_FDS}, ["out"])
    record = app.run_node("child")
    assert record.status == "succeeded", record.error
    seen = next(line for line in log_lines(app, record) if line.startswith("child sees"))
    assert "socket:" not in seen, f"a node's subprocess holds a socket: {seen}"


def test_a_big_write_goes_as_shared_memory_and_commits_in_order(app_runner: Any) -> None:
    app = app_runner({"big.py": BIG_WRITE}, ["out"])
    record = app.run_node("big")
    assert record.status == "succeeded", record.error
    rows = app.rows("out")
    assert [r["n"] for r in rows] == list(range(200_000))
    assert rows[-1]["text"] == "x" * 40 + "199999"
    assert "flight connected: False" in log_lines(app, record), \
        "a write over 4 MB went over gRPC, not the channel's shared memory"


def test_a_big_write_with_no_room_for_shared_memory_goes_over_flight(app_runner: Any) -> None:
    app = app_runner({"big.py": BIG_WRITE_NO_ROOM}, ["out"])
    record = app.run_node("big")
    assert record.status == "succeeded", record.error
    assert [r["n"] for r in app.rows("out")] == list(range(200_000))
    assert "flight connected: True" in log_lines(app, record), \
        "a write no memfd could hold did not go over gRPC"


def test_shared_memory_that_is_not_sealed_is_refused_and_nothing_is_committed(
        app_runner: Any) -> None:
    app = app_runner({"unsealed.py": UNSEALED, "writes.py": WRITES}, ["out"])
    record = app.run_node("unsealed")
    assert record.status == "failed"
    assert "control channel" in (record.error or ""), record.error
    assert app.rows("out") == []
    assert app.run_node("writes").status == "succeeded"
    assert len(app.rows("out")) == 100
