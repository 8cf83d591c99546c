"""A checkpoint whose rows never fully reached the engine commits nothing.

A run with no control channel (a Dask worker's, or a local one without it) sends its
checkpoint over Flight as one ``do_put``: the checkpoint (state, stream positions) in the
call's descriptor, then its last rows as record batches. gRPC ends the engine's read of a put
the same way whether the node finished sending or its process died (or dropped the writer
after an error) half way: the engine's ``read_all()`` returns the batches that came, maybe
none. Taken for the whole, that committed the stream's position past rows that were never
stored: the loss seen twice under load in test_exactly_once's SIGKILL test (one
checkpoint's 11 rows missing). The engine now stages a put only if every row the node sent
arrived (the node says how many) and the call was not cancelled.

Both tests force the interleaving with real processes: the node's Flight connection is
wrapped (in the node's own code) so that the checkpoint's batch does not leave; the engine's
data plane is only observed (when it takes the put, when it is done with it).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from patterns import wire
from patterns.engine.engine import INLINE_RUN_INFO_BYTES
from patterns.engine.launcher import Exit, LogCapture, ProcessLauncher, kill_group
from patterns.engine.relaunch import fresh_start
from patterns.engine.session import RunSession

WRITER = """
from patterns import Table
src = Table("src", "w")
src.append([{"n": n} for n in range(30)])
"""

CONSUMER = """
import signal
from patterns import Parameter, Table
from patterns.sdk._context import current_run

cut = Parameter("cut", type=str, default="")


class Stalled:
    # The checkpoint's rows never leave the node: it waits here to be killed, or fails.
    def __init__(self, writer):
        self.writer = writer  # (kept: dropping it would end the put)

    def write_table(self, data):
        if cut == "killed":
            signal.pause()
        raise MemoryError("no memory left to send the rows")


class Connection:
    def __init__(self, inner):
        self.inner = inner

    def do_put(self, descriptor, schema):
        writer, reader = self.inner.do_put(descriptor, schema)
        return Stalled(writer), reader

    def __getattr__(self, name):
        return getattr(self.inner, name)


src = Table("src")
dst = Table("dst", "w")
stream = src.as_stream()
for i, r in enumerate(stream.consume_records()):
    dst.append({"n": r["n"]})
    if i == 10 and cut:
        client = current_run.get()._direct
        client._connection = Connection(client._client)
        stream.checkpoint()
"""


class PutWatch:
    """When the engine's data plane, taking a put that carries a checkpoint, starts reading
    its rows (the run's token was looked up), and when it is done with the put (its own
    ``do_put`` does all the work)."""

    def __init__(self, dataplane: Any) -> None:
        self.taken = threading.Event()
        self.done = threading.Event()
        real = dataplane.do_put

        def do_put(context: Any, descriptor: Any, reader: Any, writer: Any) -> None:
            if b'"checkpoint"' not in descriptor.command:
                return real(context, descriptor, reader, writer)
            try:
                return real(context, descriptor, _Reading(reader, self.taken), writer)
            finally:
                self.done.set()

        dataplane.do_put = do_put


class _Reading:
    def __init__(self, reader: Any, reading: threading.Event) -> None:
        self._reader = reader
        self._reading = reading

    def read_all(self) -> Any:
        self._reading.set()
        return self._reader.read_all()


class KillMidPut(ProcessLauncher):
    """Kills the run's process group once the engine has taken its checkpoint's put (the
    rows not sent yet), and reports the process's end only once the engine is done with
    that put: the engine reads the cut put before it learns that the run is over, as
    under load."""

    def __init__(self, watch: PutWatch) -> None:
        super().__init__()
        self.watch = watch

    def run_process(self, config: Any, cwd: Any, time_limit: float, capture: LogCapture,
                    on_line: Any, on_start: Any = None, python: str | None = None) -> Exit:
        def started(pid: int) -> None:
            if on_start is not None:
                on_start(pid)

            def kill() -> None:
                self.watch.taken.wait(60)  # (else killed anyway: the test then fails, not hangs)
                kill_group(pid)

            threading.Thread(target=kill, daemon=True).start()

        exit_ = super().run_process(config, cwd, time_limit, capture, on_line,
                                    on_start=started, python=python)
        assert self.watch.done.wait(60), "the engine never finished reading the put"
        return exit_


def make(app_runner: Any) -> Any:
    app = app_runner({"writer.py": WRITER, "consumer.py": CONSUMER}, ["src", "dst"])
    record, _ = app.engine.run_node(app.app.node("writer"), "manual")
    assert record.status == "succeeded"
    return app


def use_launcher(app: Any, launcher: ProcessLauncher) -> None:
    """Runs started by ``launcher`` have no control channel: everything goes over Flight,
    as from a run on another machine."""
    app.engine.launcher.close()
    app.engine.launcher = launcher


def finish_and_check(app: Any) -> None:
    use_launcher(app, ProcessLauncher())
    record, _ = app.engine.run_node(app.app.node("consumer"), "manual")
    assert record.status == "succeeded", record.error
    got = Counter(r["n"] for r in app.rows("dst"))
    assert got == Counter(range(30)), (
        f"never stored: {sorted(set(range(30)) - set(got))}; "
        f"stored twice: {sorted(n for n, c in got.items() if c > 1)}")


def test_a_node_killed_while_sending_its_checkpoint_commits_none_of_it(app_runner: Any) -> None:
    app = make(app_runner)
    watch = PutWatch(app.engine.dataplane)
    use_launcher(app, KillMidPut(watch))
    record, _ = app.engine.run_node(app.app.node("consumer"), "manual", {"cut": "killed"})
    assert record.status == "failed" and record.exit_code == -9, record
    assert record.checkpoints == 0
    assert app.rows("dst") == []
    finish_and_check(app)


def test_a_node_that_fails_while_sending_its_checkpoint_commits_none_of_it(
        app_runner: Any) -> None:
    app = make(app_runner)
    use_launcher(app, ProcessLauncher())
    record, _ = app.engine.run_node(app.app.node("consumer"), "manual", {"cut": "raised"})
    assert record.status == "failed"
    assert "MemoryError" in (record.error or ""), record.error
    assert record.checkpoints == 0
    assert app.rows("dst") == []
    finish_and_check(app)


def test_a_put_on_its_way_when_its_run_starts_again_elsewhere_commits_nothing(
        app_runner: Any) -> None:
    """A Dask run whose worker was declared lost starts again from its last checkpoint with
    a new token; its first process may live on (a network partition). A checkpoint that
    process had on its way, its token looked up before the revocation, must not commit:
    the new process reads those rows again (they would be written twice)."""
    app = make(app_runner)
    session = RunSession(run_id="lost-run", node=app.app.node("consumer"),
                         store=app.engine.store, parameters={}, time_limit_seconds=600)
    app.engine.dataplane.register(session)
    watch = PutWatch(app.engine.dataplane)
    data = pa.table({"n": [0, 1, 2]})
    cmd = {"port": "dst", "op": "append", "token": session.token, "rows": data.num_rows,
           "checkpoint": {"state": {"done": 3}, "positions": {}, "final": False}}
    lost = flight.connect(app.engine.dataplane.uri)  # (the first process's connection)
    try:
        writer, _ = lost.do_put(flight.FlightDescriptor.for_command(wire.encode(cmd)),
                                data.schema)
        assert watch.taken.wait(60), "the engine never took the put"
        fresh = fresh_start(app.engine.dataplane, session, {"token": session.token}, {},
                            False, INLINE_RUN_INFO_BYTES)
        assert fresh is not None and fresh["token"] != cmd["token"]
        writer.write_table(data)
        with pytest.raises(flight.FlightError, match="token"):
            writer.close()
    finally:
        lost.close()
        app.engine.dataplane.unregister(session)
    assert watch.done.is_set()
    assert app.rows("dst") == []
    assert app.state("consumer") == {}
    assert session.checkpoints == 0


def test_a_lost_process_asking_for_a_new_run_or_failing_late_does_not_reach_the_new_one(
        app_runner: Any) -> None:
    """The lost process's other requests, looked up before the revocation as the put above:
    its error would fail the run that started again, its "run again" queue a run."""
    from patterns.engine.dataplane import _new_run, _report_error
    from patterns.errors import EngineError

    app = make(app_runner)
    session = RunSession(run_id="lost-run", node=app.app.node("consumer"),
                         store=app.engine.store, parameters={}, time_limit_seconds=600)
    app.engine.dataplane.register(session)
    old = session.token
    try:
        fresh = fresh_start(app.engine.dataplane, session, {"token": old}, {}, False,
                            INLINE_RUN_INFO_BYTES)
        assert fresh is not None
        with pytest.raises(EngineError, match="revoked"):
            _report_error(session, {"token": old, "error": "MemoryError", "traceback": "..."})
        with pytest.raises(EngineError, match="revoked"):
            _new_run(session, {"token": old})
        _report_error(session, {"token": fresh["token"], "error": "the new one's"})
    finally:
        app.engine.dataplane.unregister(session)
    assert session.requests.error == "the new one's" and not session.requests.new_run
