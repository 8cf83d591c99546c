"""The engine: the single writer of a store, running nodes of one app.

It wires the store, the data plane and the launcher together and keeps the run records.
``patterns run`` embeds one for a pass over the app (see :mod:`patterns.engine.reactive`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from patterns import wire
from patterns.engine.admin import Desk
from patterns.engine.dataplane import DataPlane
from patterns.engine.engine_file import announce, withdraw
from patterns.engine.environments import Environments
from patterns.engine.events import Reporter, SilentReporter
from patterns.engine.launcher import Exit, LogCapture, ProcessLauncher
from patterns.engine.livelog import LiveLog, live_log_path
from patterns.engine.masking import Masker, masker_for, secret_strings
from patterns.engine.parameters import resolve_parameters
from patterns.engine.secrets import SecretStore
from patterns.engine.session import RunSession, store_rules
from patterns.errors import ConfigError
from patterns.graph.model import App, Node
from patterns.store import meta
from patterns.store.duckdb import DuckDBStore, disk_full
from patterns.store.ids import encode
from patterns.store.model import CommitResult, RunRecord

log = logging.getLogger(__name__)

#: A run's first facts (ports, state, positions) travel with its start request up to this size.
INLINE_RUN_INFO_BYTES = 64_000


def default_store_path(app: App) -> Path:
    configured = os.environ.get("PATTERNS_STORE")
    if configured:
        return Path(configured)
    return app.root / ".patterns" / "store.duckdb"


def new_run_id() -> str:
    return encode(int(time.time() * 1000), 10) + encode(int.from_bytes(os.urandom(10), "big"), 16)


#: The error of a run whose engine died (killed, crashed, the machine stopped) mid-run.
ENGINE_DIED = ("the engine stopped (killed or crashed) while this run was running; its writes "
               "were rolled back to the last checkpoint")


def end_lost_runs(store: DuckDBStore) -> None:
    """Runs still ``running`` when an engine opens the store were left by an engine that died
    (only one process can open a store for writing): they end as ``failed`` with
    :data:`ENGINE_DIED`, never ``running`` forever. Nothing they wrote past their last
    checkpoint was ever committed."""
    from patterns.store.migrations import META

    with store.transaction() as cur:
        cur.execute(f"UPDATE {META}.runs SET status = 'failed', ended_at = ?, error = ? "
                    f"WHERE status = 'running'", [dt.datetime.now(dt.UTC), ENGINE_DIED])


class Engine:
    def __init__(self, app: App, *, store_path: Path | None = None,
                 reporter: Reporter | None = None, secrets: SecretStore | None = None,
                 launcher: ProcessLauncher | None = None,
                 environments: Environments | None = None, kind: str = "run") -> None:
        self.app = app
        store_path = store_path or default_store_path(app)
        self.store = DuckDBStore(store_path)
        end_lost_runs(self.store)
        self.live = LiveLog(live_log_path(store_path))
        self.reporter: Reporter = reporter or SilentReporter()
        self.secrets = secrets or SecretStore()
        self.launcher = launcher or ProcessLauncher()
        self.environments = environments or Environments()
        self.dataplane = DataPlane()
        self.dataplane.start()
        #: Answers response webhooks (the server sets it): ``responder(request_key, payload)``.
        self.responder: Callable[[str, Any], None] | None = None
        self._active: dict[str, RunSession] = {}  # runs between their start and end
        self._running: dict[str, int] = {}  # run id -> pid of its process
        self._cancelled: dict[str, str] = {}
        self._lock = threading.Lock()
        #: Writes the start records of runs, while their processes start.
        self._recorder = ThreadPoolExecutor(1, thread_name_prefix="patterns-recorder")
        if app.requirements_file is None:
            # Warm up while the rest starts. Apps with requirements build their environment
            # (and warm it) at their first run, where a failure fails that run, not the engine.
            self.launcher.prepare(self.dataplane.uri)
        # DuckDB imports pandas the first time it takes Arrow data: done here, on this
        # thread, while the warm worker starts, so that two threads never do it at once
        # (the recorder, the data plane and the scheduler all use the store).
        _warm_duckdb_imports()
        # The one door to the store: outside requests (the CLI, notebooks) come through the
        # data plane, found from .patterns/engine.json, with this engine's admin token.
        self.announced = announce(store_path, self.dataplane.uri, kind)
        self.dataplane.admit(self.announced.token, self._desk)

    def _desk(self) -> Desk:
        return Desk(self.store, self.app, self._in_progress)

    def _in_progress(self) -> list[tuple[str, Node]]:
        with self._lock:
            return [(run_id, session.node) for run_id, session in self._active.items()]

    def close(self) -> None:
        withdraw(self.store.path, self.announced)
        self._recorder.shutdown()
        self.launcher.close()
        self.live.close()
        self.dataplane.stop()
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ runs
    def run_node(self, node: Node, trigger: str, param_overrides: dict[str, Any] | None = None,
                 attempt: int = 1, *, run_id: str | None = None,
                 on_end: Callable[[Any, RunRecord, RunSession | None], None] | None = None,
                 ) -> tuple[RunRecord, RunSession | None]:
        """Run ``node`` once in a fresh process and record the run; never raises for a
        failure of the node itself (the run record says what happened).
        ``on_end(cursor, record, session)`` runs in the transaction that records the run's
        end (the scheduler takes the run's queue item out there)."""
        run_id = run_id or new_run_id()
        now = dt.datetime.now(dt.UTC)
        seen = self.store.last_commit()
        record = RunRecord(id=run_id, node_id=node.id, node_title=node.title, trigger=trigger,
                           status="running", queued_at=now, started_at=now, seen_commit=seen,
                           attempt=attempt)
        try:
            python = (self.environments.python_for(self.app, self.reporter.progress)
                      if self.app.requirements_file and node.kind != "sql"
                      else None)  # None: the launcher's own
            params = resolve_parameters(node, self.secrets, param_overrides)
        except ConfigError as exc:
            failed = replace(record, status="failed", ended_at=now,
                             error=self._masker([])(str(exc)))
            with self.store.transaction() as tx:
                meta.insert_run(tx, failed)
                if on_end is not None:
                    on_end(tx, failed, None)
            self._started(failed)
            self._finished(failed)
            return failed, None
        # Everything the run leaves behind (output, error, traceback, record) is masked with
        # this, in the engine, as it arrives: the node process is not trusted to mask.
        referenced = _referenced(node, param_overrides)
        mask = self._masker([params[name] for name in referenced if name in params])
        record = mask.record(replace(record, parameters={
            name: "****" if name in referenced else value for name, value in params.items()}))
        limit = node.settings.time_limit_seconds
        session = RunSession(run_id=run_id, node=node, store=self.store, parameters=params,
                             time_limit_seconds=limit, responder=self.responder,
                             rules=store_rules(self.app))
        with self._lock:
            self._active[run_id] = session
        self._started(record)

        self.dataplane.register(session)
        capture = LogCapture(mask=mask,
                             sink=lambda line: self.live.output(run_id, line))
        # The run's start is recorded while its process starts (not before, on the
        # recorder thread): its final checkpoint, which also records its end, waits for it.
        start = _StartRecord(self.store, record)
        session.start_recorded = start.written
        session.at_final = lambda tx, result: self._end_with_final_checkpoint(
            tx, result, record, session, capture, start, on_end)
        config = {"uri": self.dataplane.uri, "token": session.token,
                  "app_root": str(node.root or self.app.root), "node_file": node.rel_file,
                  "run_id": run_id}
        if node.root is not None:  # a component's node: its folder is its package
            config["package"] = "1"
        # What the node asks for first comes with it (saves a round trip), unless it is big
        # (a large state document): then the node fetches it.
        info = wire.encode({**session.run_info(), "parameters": params}).decode()
        if len(info) <= INLINE_RUN_INFO_BYTES:
            config["run_info"] = info
        try:
            if node.kind == "sql":  # runs in the engine itself: no process
                start.write()
                exit_ = self._run_sql(session, record, capture, limit)
            else:
                start.write_soon(self._recorder)  # while the process starts
                exit_ = self.launcher.run(
                    config, self.app.root, limit, capture,
                    lambda stream, line, level: self.reporter.run_output(record, stream, line,
                                                                         level),
                    on_start=lambda pid: self._started_process(run_id, pid),
                    python=python)
        except Exception as exc:  # the engine's own failure (no process, no file...): the
            # run fails and is recorded as such, never left "running"
            import traceback as tb

            exit_ = Exit(None)
            session.requests.error = (f"the run could not be carried out: "
                                      f"{type(exc).__name__}: {exc}")
            session.requests.traceback = "".join(tb.format_exception(exc))
        finally:
            self.dataplane.unregister(session)
            with self._lock:
                self._running.pop(run_id, None)
                self._active.pop(run_id, None)
            start.settle()
        session.close()  # whatever was staged after the last checkpoint is dropped
        cancelled = self._cancelled.pop(run_id, None)
        if session.ended is not None:  # recorded with the final checkpoint
            final = self._after_final_checkpoint(session, capture, exit_)
            self._finished(final)
            return final, session
        status, error = _outcome(exit_.code, exit_.timed_out, session, limit)
        if cancelled is not None and status != "succeeded":  # (it may have just finished)
            status, error = "cancelled", cancelled
        ended = dt.datetime.now(dt.UTC)
        final = mask.record(replace(
            record, status=status, ended_at=ended, exit_code=exit_.code, error=error,
            traceback=session.requests.traceback if status != "succeeded" else None,
            rows_read=dict(session.rows_read), rows_written=dict(session.rows_written),
            checkpoints=session.checkpoints))
        with self.store.transaction() as tx:
            start.record_end(tx, final)
            meta.save_log(tx, run_id, capture.text(), capture.truncated)
            if on_end is not None:
                on_end(tx, final, session)
        self._finished(final)
        return final, session

    def _end_with_final_checkpoint(
            self, tx: Any, result: CommitResult, record: RunRecord, session: RunSession,
            capture: LogCapture, start: _StartRecord,
            on_end: Callable[[Any, RunRecord, RunSession | None], None] | None,
    ) -> tuple[RunRecord, str]:
        """In the transaction of the run's final checkpoint: the run's end, as succeeded
        (its work is committed with it), with its log so far. One transaction per run
        instead of two; what the process does after it (its exit, any last output) is
        added by :meth:`_after_final_checkpoint`, only if there is anything to add."""
        written = dict(session.rows_written)
        for table, n in result.rows_added.items():
            written[table] = written.get(table, 0) + n
        final = replace(record, status="succeeded", ended_at=dt.datetime.now(dt.UTC),
                        exit_code=0, rows_read=dict(session.rows_read), rows_written=written,
                        checkpoints=session.checkpoints + 1)
        text = capture.text()
        start.record_end(tx, final)
        meta.save_log(tx, record.id, text, capture.truncated, first=True)
        if on_end is not None:
            on_end(tx, final, session)
        return final, text

    def _after_final_checkpoint(self, session: RunSession, capture: LogCapture,
                                exit_: Exit) -> RunRecord:
        """The run's end was recorded with its final checkpoint: it succeeded. A process
        that then failed (an atexit handler, a signal) is noted in its log, with its exit
        code; output printed after the checkpoint is added to the saved log."""
        assert session.ended is not None
        final, saved = session.ended
        if exit_.code != 0:
            why = ("it passed its time limit" if exit_.timed_out else
                   f"exit code {exit_.code}" if exit_.code is not None and exit_.code > 0 else
                   f"signal {-(exit_.code or 0)}" if exit_.code is not None else "it was lost")
            capture.add("stderr", f"[patterns] the node process ended with {why} after its "
                                  f"final checkpoint; the run's work was committed")
        text = capture.text()
        if text == saved and exit_.code == final.exit_code:
            return final  # (the usual case: nothing more to write)
        final = replace(final, exit_code=exit_.code)
        with self.store.transaction() as tx:
            meta.update_run(tx, final.id, exit_code=exit_.code)
            meta.save_log(tx, final.id, text, capture.truncated)
        return final

    def cancel(self, run_id: str, reason: str = "cancelled") -> bool:
        """Stop a running run: its process group is killed and the run rolled back to its
        last checkpoint, recorded as ``cancelled`` with ``reason`` (a run whose process is
        still starting is killed as soon as it has one). False if it is not running (any
        more)."""
        with self._lock:
            session = self._active.get(run_id)
            if session is None:
                return False
            self._cancelled[run_id] = reason
            pid = self._running.get(run_id)
        session.stop.set()  # a SQL node's statements are interrupted
        if pid is not None:
            self.launcher.kill(pid)
        return True

    def _started_process(self, run_id: str, pid: int) -> None:
        with self._lock:
            self._running[run_id] = pid
            cancelled = run_id in self._cancelled
        if cancelled:  # asked to stop before it had a process
            self.launcher.kill(pid)

    def running_runs(self) -> list[str]:
        with self._lock:
            return list(self._active)

    def _run_sql(self, session: RunSession, record: RunRecord, capture: LogCapture,
                 limit: float) -> Exit:
        from patterns.engine.sql_nodes import run_sql_node

        def say(line: str) -> None:
            text = capture.add("stdout", line)
            if text is not None:
                self.reporter.run_output(record, "stdout", text, None)

        return run_sql_node(session, limit, say)

    def _started(self, record: RunRecord) -> None:
        self.live.start(record)
        self.reporter.run_started(record)

    def _finished(self, record: RunRecord) -> None:
        self.live.end(record)
        self.reporter.run_finished(record)

    def _masker(self, resolved: list[Any]) -> Masker:
        """What a run must not leak: the values its parameters got from references, and
        every stored secret and connection besides (the node process may come across
        them)."""
        try:
            stored: list[str] = self.secrets.values()
        except ConfigError:  # (an unreadable secret store: the run fails on its references)
            stored = []
        return masker_for(tuple(secret_strings([*resolved, *stored])))


def _warm_duckdb_imports() -> None:
    import duckdb
    import pyarrow as pa

    with duckdb.connect() as con:
        con.register("warm", pa.table({"n": [1]}))
        con.execute("SELECT ?::TIMESTAMPTZ, ?", [dt.datetime.now(dt.UTC), "x"]).fetchall()


class _StartRecord:
    """A run's record as it starts (status ``running``), written once its process has
    started, off the critical path; its end then updates it (or inserts the whole record
    if the run never got that far)."""

    def __init__(self, store: DuckDBStore, record: RunRecord) -> None:
        self.store = store
        self.record = record
        self.ok = False
        self._submitted = False
        #: Set once the start has been written (or will not be): the end waits for it.
        self.written = threading.Event()

    def write_soon(self, executor: ThreadPoolExecutor) -> None:
        executor.submit(self.write)
        self._submitted = True

    def settle(self) -> None:
        """Once the run is over: wait for a write under way, or give up on one never
        asked for (the end then writes the whole record)."""
        if self._submitted:
            self.written.wait()
        self.written.set()

    def write(self) -> None:
        try:
            with self.store.cursor() as cur:
                meta.insert_run(cur, self.record)
            self.ok = True
        except Exception as exc:  # the run goes on; its end writes the whole record
            log.warning("could not record the start of run %s (its end will): %s",
                        self.record.id, disk_full(exc) or exc)
        finally:
            self.written.set()

    def record_end(self, tx: Any, final: RunRecord) -> None:
        if not self.ok:
            meta.insert_run(tx, final)
            return
        if not meta.update_run(tx, final.id, status=final.status, ended_at=final.ended_at,
                               exit_code=final.exit_code, error=final.error,
                               traceback=final.traceback, rows_read=final.rows_read,
                               rows_written=final.rows_written, checkpoints=final.checkpoints):
            meta.insert_run(tx, final)  # (not visible to this transaction: never lose it)


def _outcome(code: int | None, timed_out: bool, session: RunSession,
             limit: float) -> tuple[str, str | None]:
    if timed_out:
        return "timed_out", (f"the run passed its time limit of {limit:g} s and was stopped; "
                             f"it was rolled back to its last checkpoint. Use "
                             f"State().should_continue() to stop in time, or raise "
                             f"settings.time_limit_seconds")
    if code == 0 and session.finished:
        return "succeeded", None
    if session.requests.error:
        return "failed", session.requests.error
    if code == 0:
        return "failed", "the node process ended before its run finished (os._exit?)"
    if code is not None and code < 0:
        return "failed", f"the node process was killed by signal {-code}"
    return "failed", f"the node process exited with code {code}"


def _referenced(node: Node, overrides: dict[str, Any] | None) -> set[str]:
    """The parameters whose values come from ``${{ secret }}`` or ``${{ connection.x }}``."""
    from patterns.graph.parameters import is_reference

    given = {**node.parameter_values, **(overrides or {})}
    return {name for name, raw in given.items() if is_reference(raw)}
