"""Exactly-once: a stream consumer killed at many points (os._exit inside, SIGKILL from
outside), re-run until done, writes every input row exactly once — also while two other
nodes keep appending to its input."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

import pytest

from patterns.engine.launcher import Exit, LogCapture, ProcessLauncher, kill_group

WRITER = """
from patterns import Table, Parameter
import time
src = Table("src", "w")
tag = Parameter("tag", type=str, default="w")
batches = Parameter("batches", type=int, default=1)
size = Parameter("size", type=int, default=100)
for b in range(batches):
    src.append([{{"tag": tag, "n": b * size + i}} for i in range(size)])
    src.flush()
    {checkpoint}
    time.sleep(0.01)
"""

CONSUMER = """
import os, time
from patterns import Table, Parameter
src = Table("src")
dst = Table("dst", "w")
crash_at = Parameter("crash_at", type=int, default=-1)
every = Parameter("every", type=int, default=7)
pause = Parameter("pause", type=float, default=0.0)
stream = src.as_stream()
for i, r in enumerate(stream.consume_records()):
    dst.append({"tag": r["tag"], "n": r["n"]})
    if i == crash_at:
        os._exit(3)
    if i % every == every - 1:
        stream.checkpoint()
    if pause:
        time.sleep(pause)
"""


class KillingLauncher(ProcessLauncher):
    """A real launcher that SIGKILLs the node's process group from outside after a delay."""

    def __init__(self, delays: list[float]) -> None:
        super().__init__()
        self.delays = delays

    def run_process(self, config: Any, cwd: Any, time_limit: float, capture: LogCapture,
                    on_line: Any, on_start: Any = None, python: str | None = None) -> Exit:
        delay = self.delays.pop(0) if self.delays else None

        def started(pid: int) -> None:
            if on_start is not None:
                on_start(pid)
            if delay is not None:
                threading.Timer(delay, kill_group, args=(pid,)).start()

        return super().run_process(config, cwd, time_limit, capture, on_line,
                                   on_start=started, python=python)


def use_launcher(app: Any, launcher: ProcessLauncher) -> None:
    app.engine.launcher.close()
    app.engine.launcher = launcher


def make_app(app_runner: Any, checkpoint_writer: bool = False) -> Any:
    ck = "src._run.checkpoint()" if checkpoint_writer else "pass"
    return app_runner(
        {"writer.py": WRITER.format(checkpoint=ck), "writer2.py": WRITER.format(checkpoint=ck),
         "consumer.py": CONSUMER},
        ["src", "dst"],
    )


def assert_exactly_once(app: Any, expected: Counter[tuple[str, int]]) -> None:
    got = Counter((r["tag"], r["n"]) for r in app.rows("dst"))
    doubled = {k: v for k, v in got.items() if v > 1}
    missing = expected - got
    assert not doubled, f"delivered more than once: {sorted(doubled)[:10]}"
    assert not missing, f"never delivered: {sorted(missing)[:10]}"
    assert got == expected


def run_until_done(app: Any, node: Any, overrides: dict[str, Any] | None = None,
                   attempts: int = 20) -> None:
    for _ in range(attempts):
        record, _ = app.engine.run_node(node, "manual", overrides)
        if record.status == "succeeded":
            return
    raise AssertionError("consumer never succeeded")


@pytest.mark.slow
def test_consumer_killed_by_os_exit_at_many_points(app_runner: Any) -> None:
    app = make_app(app_runner)
    writer = app.app.node("writer")
    record, _ = app.engine.run_node(writer, "manual", {"tag": "a", "size": 200})
    assert record.status == "succeeded"
    consumer = app.app.node("consumer")
    for crash_at in (0, 1, 5, 6, 7, 13, 14, 30, 31, 64):
        record, _ = app.engine.run_node(consumer, "manual", {"crash_at": crash_at})
        assert record.status == "failed"
        assert record.exit_code == 3
    run_until_done(app, consumer)
    assert_exactly_once(app, Counter(("a", n) for n in range(200)))


@pytest.mark.slow
def test_consumer_killed_from_outside_with_sigkill(app_runner: Any) -> None:
    app = make_app(app_runner)
    app.engine.run_node(app.app.node("writer"), "manual", {"tag": "a", "size": 300})
    rng = random.Random(7)
    delays = [rng.uniform(0.3, 1.2) for _ in range(8)]
    use_launcher(app, KillingLauncher(delays))
    consumer = app.app.node("consumer")
    statuses = []
    for _ in range(8):
        record, _ = app.engine.run_node(consumer, "manual", {"pause": 0.004, "every": 11})
        statuses.append(record.status)
    assert "failed" in statuses, "no run was actually killed; the test proves nothing"
    use_launcher(app, ProcessLauncher())
    run_until_done(app, consumer)
    assert_exactly_once(app, Counter(("a", n) for n in range(300)))


@pytest.mark.slow
def test_exactly_once_with_two_concurrent_writers(app_runner: Any) -> None:
    app = make_app(app_runner, checkpoint_writer=True)
    w1, w2 = app.app.node("writer"), app.app.node("writer2")
    consumer = app.app.node("consumer")
    params = {"batches": 25, "size": 8}
    threads = [
        threading.Thread(target=app.engine.run_node, args=(w1, "manual", {**params, "tag": "a"})),
        threading.Thread(target=app.engine.run_node, args=(w2, "manual", {**params, "tag": "b"})),
    ]
    for t in threads:
        t.start()
    rng = random.Random(11)
    crash_points = [rng.randrange(0, 40) for _ in range(6)]
    for crash_at in crash_points:
        app.engine.run_node(consumer, "manual", {"crash_at": crash_at, "every": 3})
    for t in threads:
        t.join()
    run_until_done(app, consumer, {"every": 5})
    expected = Counter((tag, n) for tag in "ab" for n in range(200))
    assert Counter((r["tag"], r["n"]) for r in app.rows("src")) == expected
    assert_exactly_once(app, expected)


@pytest.mark.slow
def test_automatic_checkpoints_bound_the_loss_of_a_killed_run(app_runner: Any) -> None:
    app = app_runner({"writer.py": WRITER.format(checkpoint="pass"), "consumer.py": CONSUMER},
                     ["src", "dst"], settings={"checkpoint_seconds": 0.2})
    app.engine.run_node(app.app.node("writer"), "manual", {"tag": "a", "size": 400})
    consumer = app.app.node("consumer")
    # No explicit checkpoints (every > rows), slow records, killed from outside after ~1.5 s.
    use_launcher(app, KillingLauncher([1.5]))
    record, _ = app.engine.run_node(consumer, "manual", {"pause": 0.01, "every": 10_000})
    assert record.status == "failed"
    assert record.checkpoints >= 2, "no automatic checkpoint happened before the kill"
    committed = len(app.rows("dst"))
    assert 0 < committed < 400
    use_launcher(app, ProcessLauncher())
    run_until_done(app, consumer, {"every": 10_000})
    assert_exactly_once(app, Counter(("a", n) for n in range(400)))
