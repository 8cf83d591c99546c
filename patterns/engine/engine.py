"""The engine: runs the nodes of one app on its store (one engine per DuckDB store;
several may share a PostgreSQL store, see :mod:`patterns.engine.claims`).

It wires the store, the data plane and the launcher together and keeps the run records.
``patterns run`` embeds one for a pass over the app (see :mod:`patterns.engine.reactive`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from patterns import wire
from patterns.engine.admin import Desk
from patterns.engine.alerts import Alerts
from patterns.engine.claims import Claims, live_nodes
from patterns.engine.configuration import check_configuration
from patterns.engine.dataplane import DataPlane
from patterns.engine.engine_file import announce, withdraw
from patterns.engine.environments import Environments
from patterns.engine.events import Reporter, Running, SilentReporter
from patterns.engine.launcher import Exit, LogCapture, ProcessLauncher
from patterns.engine.launching import Launcher, RunRequest
from patterns.engine.livelog import LiveLog, live_log_path
from patterns.engine.masking import Masker, masker_for, secret_strings
from patterns.engine.parameters import resolve_parameters
from patterns.engine.run_start import StartRecord
from patterns.engine.run_statuses import RunStatuses
from patterns.engine.secrets import SecretStore
from patterns.engine.session import RunSession
from patterns.engine.storages import ExternalTable, external_tables
from patterns.engine.store_rules import store_rules
from patterns.errors import ConfigError
from patterns.graph.model import App, Node
from patterns.store import open_store
from patterns.store.interface import Store, Transaction
from patterns.store.model import CommitResult, RunRecord
from patterns.store.repositories import new_id

log = logging.getLogger(__name__)

#: A run's first facts (ports, state, positions) travel with its start request up to this size.
INLINE_RUN_INFO_BYTES = 64_000


def default_store_path(app: App) -> Path:
    """The app's store file: ``$PATTERNS_STORE`` when it is a path, else the app's own."""
    configured = os.environ.get("PATTERNS_STORE")
    if configured and "://" not in configured:
        return Path(configured)
    return app.root / ".patterns" / "store.duckdb"


def default_store(app: App) -> str | Path:
    """Where the app's store is: ``$PATTERNS_STORE`` (a path or a URL), else its own file."""
    configured = os.environ.get("PATTERNS_STORE")
    return configured if configured and "://" in configured else default_store_path(app)


def new_run_id() -> str:
    return new_id()


#: The error of a run whose engine died (killed, crashed, the machine stopped) mid-run.
ENGINE_DIED = ("the engine stopped (killed or crashed) while this run was running; its writes "
               "were rolled back to the last checkpoint")


def end_lost_runs(store: Store) -> None:
    """Runs still ``running`` when an engine opens the store, and whose node no live engine
    holds the lease of, were left by an engine that died: they end as ``failed`` with
    :data:`ENGINE_DIED`, never ``running`` forever. Nothing they wrote past their last
    checkpoint was ever committed. (A DuckDB store has one engine: all such runs.)"""
    with store.transaction() as tx:
        tx.runs.fail_running(ENGINE_DIED, dt.datetime.now(dt.UTC), except_nodes=live_nodes(tx))


class Engine:
    def __init__(self, app: App, *, store_path: str | Path | None = None,
                 store: Store | None = None,
                 reporter: Reporter | None = None, secrets: SecretStore | None = None,
                 launcher: Launcher | None = None,
                 environments: Environments | None = None, kind: str = "run",
                 data_plane_host: str | None = None) -> None:
        """``store``: the store to run on (the engine closes it); else the one at
        ``store_path`` or ``$PATTERNS_STORE`` (a path or URL), else the app's DuckDB file."""
        self.secrets = secrets or SecretStore()
        self.app = app
        system_arrow_pool()
        if store is None:
            store = open_store(store_path or default_store(app))
        self.store: Store = store
        #: Where the engine announces itself and keeps live logs: beside a store file, or
        #: in the app's .patterns folder for a database server.
        self.home = store.path or app.root / ".patterns" / "store.duckdb"
        end_lost_runs(self.store)
        #: This engine's identity and node leases (several engines on one store).
        self.claims = Claims(self.store)
        self.claims.on_lost = self._claim_lost
        self.live = LiveLog(live_log_path(self.home))
        #: Each node's newest run's status, kept here when no other engine shares the store.
        self.statuses = None if self.claims.shared else RunStatuses(self.store)
        self.reporter: Reporter = reporter or SilentReporter()
        self.launcher: Launcher = launcher or ProcessLauncher()
        self.environments = environments or Environments()
        self.dataplane = DataPlane.from_settings(data_plane_host)
        self.dataplane.start()
        serve_channels = getattr(self.launcher, "serve_channels", None)
        if serve_channels is not None:  # a local launcher: runs get a control channel
            serve_channels(self.dataplane.serve_channel)
            self.dataplane.prefetch_passes = True
        #: Answers response webhooks (the server sets it): ``responder(request_key, payload)``.
        self.responder: Callable[[str, Any], None] | None = None
        #: Called after a run's commit that added rows (the server's scheduler sets it).
        self.on_run_commit: Callable[[], None] | None = None
        #: Alerts about run ends (settings.alerts), sent in the background.
        self.alerts = Alerts(app=lambda: self.app, store=self.store,
                             state_file=Path(self.home).parent / "alerts.json",
                             masker=lambda: self._masker([]), secret=self.secrets.get)
        self._active: dict[str, RunSession] = {}  # runs between their start and end
        self._cancelled: dict[str, str] = {}
        self._lock = threading.Lock()
        #: Held by a reset (admin.py: state, stream, a table's new version) and by a run as it starts.
        self._starts = threading.Lock()
        #: Writes the start records of runs that last (patterns/engine/run_start.py).
        self._recorder = ThreadPoolExecutor(1, thread_name_prefix="patterns-recorder")
        if app.requirements_file is None:
            # Warm up while the rest starts. Apps with requirements build their environment
            # (and warm it) at their first run, where a failure fails that run, not the engine.
            self.launcher.prepare(self.dataplane.uri)
        # DuckDB (the store's, and the one that checks node SQL) imports pandas the first
        # time it takes Arrow data: done here, on this thread, while the warm worker starts,
        # so that two threads never do it at once (the recorder, the data plane and the
        # scheduler all use the store).
        from patterns.store.duckdb_catalog import warm_up

        warm_up()
        # The one door to the store: outside requests (the CLI, notebooks) come through the
        # data plane, found from .patterns/engine.json, with this engine's admin token.
        capabilities = self.store.capabilities
        self.announced = announce(self.home, self.dataplane.local_uri, kind,
                                  location=capabilities.location, backend=capabilities.backend,
                                  engine_id=self.claims.engine_id)
        self.dataplane.admit(self.announced.token, self._desk)

    @property
    def app(self) -> App:
        """The app this engine runs: nodes missing a secret or a storage's connection are
        marked as needing configuration (they are not run; the rest is)."""
        return self._app

    @app.setter
    def app(self, app: App) -> None:
        self._loaded = app
        self._app = check_configuration(app, self.secrets)

    def recheck_configuration(self) -> None:
        """Look at the secrets and storages again (a secret was set since the app loaded)."""
        self._app = check_configuration(self._loaded, self.secrets)

    def _check_configured(self, node: Node, given_values: bool) -> None:
        """ConfigError unless ``node`` can run. With values given for this run (a manual
        run's form), its parameters are checked when they are resolved instead."""
        current = next((n for n in self.app.nodes if n.id == node.id), node)
        if current.needs_configuration and not given_values:
            self.recheck_configuration()  # given since? (a secret set while serving)
            current = next((n for n in self.app.nodes if n.id == node.id), node)
            if current.needs_configuration:
                raise ConfigError(f"node {node.label} needs configuration: "
                                  + "; ".join(str(p) for p in current.needs_configuration))

    def _external_tables(self, node: Node) -> dict[str, ExternalTable]:
        """The tables of outside databases ``node`` reads or writes; ConfigError when one
        of their storages cannot be reached."""
        wanted = {*node.reads(), *node.writes()}
        found = external_tables(self.app, self.secrets)
        for store in self.app.stores:
            if store.storage is not None and store.name in wanted and store.name not in found:
                raise ConfigError(f"node {node.label} reads table '{store.name}' of storage "
                                  f"'{store.storage}', whose connection is not given: see "
                                  f"`patterns validate {self.app.root}`")
        return {name: table for name, table in found.items() if name in wanted}

    def _desk(self) -> Desk:
        return Desk(self.store, self.app, self._in_progress, quiet=lambda: self._starts)

    def _in_progress(self) -> list[tuple[str, Node]]:
        with self._lock:
            return [(run_id, session.node) for run_id, session in self._active.items()]

    def close(self) -> None:
        self.alerts.close()  # (the alerts of the last runs go out before the store closes)
        withdraw(self.home, self.announced)
        self._recorder.shutdown()
        self.launcher.close()
        self.live.close()
        self.dataplane.stop()
        self.claims.close()
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ runs
    def run_node(self, node: Node, trigger: str, param_overrides: dict[str, Any] | None = None,
                 attempt: int = 1, *, run_id: str | None = None,
                 on_end: Callable[[Transaction, RunRecord, RunSession | None], None] | None = None,
                 claimed: bool = False) -> tuple[RunRecord, RunSession | None]:
        """Run ``node`` once in a fresh process and record the run; never raises for a
        failure of the node itself (the run record says what happened).
        ``on_end(transaction, record, session)`` runs in the transaction that records the run's
        end (the scheduler takes the run's queue item out there). The run holds the node's
        lease (``claimed``: the caller took it); a node another engine of the store is
        running is not run beside it: that run fails at once, saying so."""
        run_id = run_id or new_run_id()
        if not claimed and self.claims.claim(node.id) is None:
            return self._refused(node, trigger, attempt, run_id, on_end), None
        try:
            return self._run_claimed(node, trigger, param_overrides, attempt, run_id, on_end)
        finally:
            self.claims.drop(node.id)

    def _refused(self, node: Node, trigger: str, attempt: int, run_id: str,
                 on_end: Callable[[Transaction, RunRecord, RunSession | None], None] | None,
                 ) -> RunRecord:
        now = dt.datetime.now(dt.UTC)
        failed = RunRecord(
            id=run_id, node_id=node.id, node_title=node.title, trigger=trigger,
            status="failed", queued_at=now, started_at=now, ended_at=now, attempt=attempt,
            seen_commit=self.store.last_commit(),
            error=f"node {node.label} is running on another engine of this store "
                  f"({self.store.capabilities.location}); it was not run beside it. Run it "
                  f"again once that run has ended")
        self._end_unstarted(failed, on_end)
        return failed

    def _end_unstarted(self, failed: RunRecord,
                       on_end: Callable[[Transaction, RunRecord, RunSession | None], None] | None,
                       ) -> None:
        """Record a run that ended before its node started, and tell whoever listens."""
        with self.store.transaction() as tx:
            tx.runs.insert(failed)
            if on_end is not None:
                on_end(tx, failed, None)
        self._started(failed)
        self._finished(failed)

    def _claim_lost(self, node_id: str) -> None:
        """The heartbeat found this engine's lease on ``node_id`` taken over: its run stops
        (its next checkpoint would be refused anyway)."""
        for run_id, node in self._in_progress():
            if node.id == node_id:
                self.cancel(run_id, f"this engine lost its lease on node {node.label} (it "
                                    f"was cut off from the store too long); the run was "
                                    f"rolled back to its last checkpoint and another engine "
                                    f"runs the node")

    def _run_claimed(self, node: Node, trigger: str, param_overrides: dict[str, Any] | None,
                     attempt: int, run_id: str,
                     on_end: Callable[[Transaction, RunRecord, RunSession | None], None] | None,
                     ) -> tuple[RunRecord, RunSession | None]:
        now = dt.datetime.now(dt.UTC)
        seen = self.store.last_commit()
        record = RunRecord(id=run_id, node_id=node.id, node_title=node.title, trigger=trigger,
                           status="running", queued_at=now, started_at=now, seen_commit=seen,
                           attempt=attempt)
        try:
            # None: the launcher's own Python
            python = self.environments.python_for_node(self.app, node, self.reporter.progress)
            self._check_configured(node, bool(param_overrides))
            params = resolve_parameters(node, self.secrets, param_overrides)
            rules = store_rules(self.app)  # (a schema file that cannot be read fails the run)
            external = self._external_tables(node)
        except ConfigError as exc:
            failed = replace(record, status="failed", ended_at=now,
                             error=self._masker([])(str(exc)))
            self._end_unstarted(failed, on_end)
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
                             rules=rules, app=self.app, external=external,
                             fence=self.claims.fence(node.id), on_commit=self.on_run_commit,
                             seen_commit=seen)
        with self._starts, self._lock:  # (not while a reset is written)
            self._active[run_id] = session
        self._started(record)

        self.dataplane.register(session)
        capture = LogCapture(mask=mask,
                             sink=lambda line: self.live.output(run_id, line))
        # The run's start is recorded on the recorder thread once the run has lasted a
        # moment (patterns/engine/run_start.py): a shorter run's final checkpoint records
        # it whole, with its end.
        start = StartRecord(self.store, record)
        session.start_recorded = start
        session.at_final = lambda tx, result: self._end_with_final_checkpoint(
            tx, result, record, session, capture, start, on_end)

        def shown(stream: str, line: str, level: str | None) -> None:
            start.before_shown()  # (a run seen running is recorded running)
            self.reporter.run_output(record, stream, line, level)

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
                start.write_soon(self._recorder)  # unless the run is over by then
                exit_ = self.launcher.run(RunRequest(
                    run_id=run_id, node_id=node.id, node_file=node.rel_file or node.id,
                    app_root=self.app.root, config=config, time_limit=limit,
                    capture=capture,
                    on_line=shown,
                    python=python,
                    relaunch=lambda: self._relaunch(session, config, params)))
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
                self._active.pop(run_id, None)
            start.leave_to_end()
        session.close()  # whatever was staged after the last checkpoint is dropped
        cancelled = self._cancelled.pop(run_id, None)
        if session.ended is not None:  # recorded with the final checkpoint
            final = self._after_final_checkpoint(session, capture, exit_)
            self._finished(final)
            return final, session
        if exit_.error is not None and not session.requests.error:  # (the launcher's)
            session.requests.error = exit_.error
        status, error = _outcome(exit_.code, exit_.timed_out, session, limit)
        if cancelled is not None and status != "succeeded":  # (it may have just finished)
            status, error = "cancelled", cancelled
        ended = dt.datetime.now(dt.UTC)
        # (a run that succeeded read its inputs through a later commit, maybe: the
        # commits it read while it ran wake no run of it; patterns/engine/read_through.py)
        seen = session.read_commit() if status == "succeeded" else record.seen_commit
        final = mask.record(replace(
            record, status=status, ended_at=ended, exit_code=exit_.code, error=error,
            seen_commit=seen,
            traceback=session.requests.traceback if status != "succeeded" else None,
            rows_read=dict(session.rows_read), rows_written=dict(session.rows_written),
            checkpoints=session.checkpoints))
        with self.store.transaction() as tx:
            start.record_end(tx, final)
            tx.logs.save(run_id, capture.text(), capture.truncated)
            if on_end is not None:
                on_end(tx, final, session)
        self._finished(final)
        return final, session

    def _end_with_final_checkpoint(
            self, tx: Transaction, result: CommitResult, record: RunRecord, session: RunSession,
            capture: LogCapture, start: StartRecord,
            on_end: Callable[[Transaction, RunRecord, RunSession | None], None] | None,
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
                        checkpoints=session.checkpoints + 1,
                        seen_commit=session.read_commit(result))
        text = capture.text()
        start.record_end(tx, final)
        tx.logs.save(record.id, text, capture.truncated, first=True)
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
            tx.runs.update(final.id, exit_code=exit_.code)
            tx.logs.save(final.id, text, capture.truncated)
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
        session.stop.set()  # a SQL node's statements are interrupted
        self.launcher.cancel(run_id)
        return True

    def _relaunch(self, session: RunSession, config: dict[str, Any],
                  params: dict[str, Any]) -> dict[str, Any] | None:
        """The run's process was lost with its machine: revoke its token (a process that
        lives on can commit nothing more), drop what it staged after its last checkpoint,
        and give the config of a fresh start from that checkpoint (None: the run is over)."""
        from patterns.engine.relaunch import fresh_start

        with self._lock:
            cancelled = session.run_id in self._cancelled
        return fresh_start(self.dataplane, session, config, params, cancelled,
                           INLINE_RUN_INFO_BYTES)

    def running_now(self) -> list[Running]:
        """The runs in progress: node, start and rows sent so far (for a live display)."""
        with self._lock:
            sessions = list(self._active.values())
        return [Running(s.run_id, s.node.title, s.started_at,
                        max(s.rows_sent, sum(s.rows_written.values()))) for s in sessions]

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
        if self.statuses is not None:
            self.statuses.seen(record)
        self.live.start(record)
        self.reporter.run_started(record)

    def _finished(self, record: RunRecord) -> None:
        if self.statuses is not None:
            self.statuses.seen(record)
        self.live.end(record)
        self.reporter.run_finished(record)
        self.alerts.run_ended(record)

    def _masker(self, resolved: list[Any]) -> Masker:
        """What a run must not leak: the values its parameters got from references, and
        every stored secret and connection besides (the node process may come across
        them)."""
        try:
            stored: list[str] = self.secrets.values()
        except ConfigError:  # (an unreadable secret store: the run fails on its references)
            stored = []
        return masker_for(tuple(secret_strings([*resolved, *stored])))


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


def system_arrow_pool() -> None:
    """Arrow buffers in the engine's process (staged writes, the chunks a commit combines)
    come from the system allocator, as in node processes (``warm_worker.node_env``), unless
    ``ARROW_DEFAULT_MEMORY_POOL`` says otherwise: with pyarrow's default, mimalloc, a commit
    of 1M records in a fresh process spent 1.7-1.9 s of system time clearing the pages of
    its new segments (0.1-0.2 s with the system allocator), and later ones 0.16-0.18 s
    against 0.11-0.12 s (bench/RESULTS.md)."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
