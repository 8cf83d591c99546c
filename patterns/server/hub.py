"""What ``patterns serve`` hosts: one :class:`AppService` per app folder, each an engine
(store, data plane, launcher) with its scheduler and webhook intake.

The HTTP layer (:mod:`patterns.server.api`) only translates requests into calls here; the
CLI's client mode calls the same things over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patterns.engine.engine import Engine
from patterns.engine.launcher import sandboxed_launcher
from patterns.engine.launching import executor_launcher, parallelism
from patterns.engine.scheduler import Scheduler
from patterns.errors import ConfigError
from patterns.graph.loader import load_app
from patterns.graph.model import App, Node
from patterns.server.answers import Responses
from patterns.server.webhooks import WebhookIntake
from patterns.store.model import RunRecord

log = logging.getLogger("patterns.server")
#: One line per run's end, and per failure its first error line (`patterns serve --quiet`
#: silences it).
runs_log = logging.getLogger("patterns.server.runs")


@dataclass
class LiveRun:
    """A running run's output so far, and who is listening to it."""

    record: RunRecord
    lines: list[dict[str, Any]] = field(default_factory=list)
    listeners: list[Callable[[str, dict[str, Any]], None]] = field(default_factory=list)
    done: bool = False


class ServerReporter:
    """Keeps each running run's output in memory for live log streams (server-sent events),
    and tells the scheduler about commits."""

    def __init__(self, app_root: Path | None = None) -> None:
        self.live: dict[str, LiveRun] = {}
        self._lock = threading.Lock()
        self.app_root = app_root

    def run_started(self, run: RunRecord) -> None:
        with self._lock:
            self.live[run.id] = LiveRun(run)

    def run_output(self, run: RunRecord, stream: str, line: str,
                   level: str | None = None) -> None:
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        event = {"time": stamp, "stream": stream, "text": line,
                 **({"level": level} if level else {})}
        with self._lock:
            live = self.live.get(run.id)
            if live is None:
                return
            live.lines.append(event)
            listeners = list(live.listeners)
        for listener in listeners:
            listener("line", event)

    def run_finished(self, run: RunRecord) -> None:
        log_end(run, self.app_root)
        with self._lock:
            live = self.live.pop(run.id, None)
        if live is None:
            return
        live.done = True
        for listener in live.listeners:
            listener("end", {"status": run.status, "error": run.error})

    def progress(self, line: str) -> None:
        log.info("environment: %s", line)

    def subscribe(self, run_id: str, listener: Callable[[str, dict[str, Any]], None]
                  ) -> list[dict[str, Any]] | None:
        """The run's lines so far, with ``listener`` getting the rest; None if not running."""
        with self._lock:
            live = self.live.get(run_id)
            if live is None:
                return None
            live.listeners.append(listener)
            return list(live.lines)

    def unsubscribe(self, run_id: str, listener: Callable[[str, dict[str, Any]], None]) -> None:
        with self._lock:
            live = self.live.get(run_id)
            if live is not None and listener in live.listeners:
                live.listeners.remove(listener)


def log_end(run: RunRecord, app_root: Path | None) -> None:
    """The run's end as one line of the server's log: node, status, why it ran, rows and
    time; for a failure, its first error line and how to see the rest."""
    written = sum((run.rows_written or {}).values())
    secs = f"{run.seconds:.2f}s" if run.seconds is not None else "-"
    what = (f"{run.node_title} {run.status} ({run.trigger}): {written:,} row(s) written in "
            f"{secs}, run {run.short_id}")
    if run.status == "succeeded":
        runs_log.info("%s", what)
        return
    first = ((run.error or "").strip().splitlines() or ["no error message"])[0]
    where = f" {app_root}" if app_root is not None else ""
    runs_log.warning("%s: %s (`patterns logs%s --run %s` shows its output)", what, first,
                     where, run.short_id)


def slug_of(app: App) -> str:
    raw = str(getattr(app, "slug", None) or app.root.name)
    return re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-") or "app"


class AppService:
    """One served app: its engine, scheduler, webhooks and the responses they wait for."""

    def __init__(self, root: Path, *, store_path: str | Path | None = None,
                 workers: int | None = None, sandbox: bool = False,
                 executor: str | None = None, data_plane_host: str | None = None) -> None:
        self.root = root.resolve()
        self.app = load_app(self.root)
        self.slug = slug_of(self.app)
        self.reporter = ServerReporter(self.root)
        launcher, data_plane_host = executor_launcher(executor, data_plane_host)
        if launcher is None and sandbox:
            launcher = sandboxed_launcher(self.root, self.app.node_roots())
        workers = workers or parallelism(launcher)
        try:
            self.engine = Engine(self.app, store_path=store_path, reporter=self.reporter,
                                 kind="serve", launcher=launcher,
                                 data_plane_host=data_plane_host)
        except BaseException:
            if launcher is not None:
                launcher.close()
            raise
        self.app = self.engine.app  # with the nodes that need configuration marked
        self.responses = Responses()
        self.engine.responder = self.responses.respond
        self.scheduler = Scheduler(self.engine, workers=workers)
        self.webhooks = WebhookIntake(self.engine.store, on_commit=self._committed,
                                      app=lambda: self.app,
                                      folder=Path(self.engine.home).parent)
        self._reload_lock = threading.RLock()
        self.install_lock = threading.Lock()  # uploads of new versions, one at a time
        self._tokens: dict[str, str] | None = None
        self._routes: tuple[App, tuple[tuple[bytes, Node], ...]] | None = None
        #: called with the new App before a reload takes effect (the acceptors learn it)
        self.on_reload: Callable[[AppService, App], None] | None = None

    def start(self) -> None:
        self.scheduler.start()
        self.webhooks.start()

    def stop(self, drain_seconds: float = 30.0) -> None:
        self.webhooks.stop()
        self.scheduler.stop(drain_seconds)
        self.responses.close()
        self.engine.close()

    def _committed(self) -> None:
        self.scheduler.notify(committed=True)

    # ------------------------------------------------------------------ the app
    def node(self, key: str) -> Node:
        return self.app.node(key)

    def reload(self) -> None:
        """graph.yml or node code changed: load the app again (if it is valid; otherwise keep
        the old one and raise its problems); queued runs are kept."""
        with self._reload_lock:
            app = load_app(self.root)
            if self.on_reload is not None:
                self.on_reload(self, app)
            self.engine.app = app
            self.app = self.engine.app  # with the nodes that need configuration marked
            self._tokens = None  # webhooks may have come or gone
            self._routes = None
            self.scheduler.reload()

    def secrets_changed(self) -> None:
        """A secret was set: nodes that waited for it may run now."""
        with self._reload_lock:
            self.engine.recheck_configuration()
            self.app = self.engine.app
            self.scheduler.reload()

    def webhook_nodes(self) -> dict[str, Node]:
        return {n.id: n for n in self.app.nodes if n.kind == "webhook"}

    def webhook_tokens(self) -> dict[str, str]:
        """Each webhook node's token (made the first time the app is served with it)."""
        with self._reload_lock:
            if self._tokens is None:
                nodes = self.webhook_nodes()
                with self.engine.store.transaction() as tx:
                    self._tokens = {i: tx.webhooks.ensure_token(i) for i in nodes}
            return dict(self._tokens)

    def webhook_by_token(self, token: str) -> Node | None:
        import hmac

        routes = self._routes  # (asked on every webhook request: kept until the app changes)
        if routes is None or routes[0] is not self.app:
            app = self.app
            tokens = self.webhook_tokens()
            nodes = {n.id: n for n in app.nodes if n.kind == "webhook"}
            routes = self._routes = (app, tuple((known.encode(), nodes[node_id])
                                                for node_id, known in tokens.items()
                                                if node_id in nodes))
        given = token.encode("utf-8", "surrogatepass")
        found = None
        for known_bytes, node in routes[1]:  # (each compared in constant time, all of them)
            if hmac.compare_digest(known_bytes, given):
                found = node
        return found


class Hub:
    """Every app this server serves, by slug."""

    def __init__(self) -> None:
        self.apps: dict[str, AppService] = {}

    def add(self, service: AppService) -> None:
        if service.slug in self.apps:
            other = self.apps[service.slug].root
            raise ConfigError(f"two apps named '{service.slug}' ({other} and {service.root}): "
                              f"give one of them another `slug:` in its graph.yml")
        self.apps[service.slug] = service

    def get(self, slug: str) -> AppService:
        service = self.apps.get(slug)
        if service is None:
            raise KeyError(slug)
        return service

    def start(self) -> None:
        for service in self.apps.values():
            service.start()

    def stop(self, drain_seconds: float = 30.0) -> None:
        for service in self.apps.values():
            with contextlib.suppress(Exception):
                service.stop(drain_seconds)


def loop_listener(loop: asyncio.AbstractEventLoop, queue_: asyncio.Queue[Any]
                  ) -> Callable[[str, dict[str, Any]], None]:
    """A reporter listener (called from engine threads) that feeds an asyncio queue."""
    def listen(kind: str, event: dict[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody listens any more
            loop.call_soon_threadsafe(queue_.put_nowait, (kind, event))
    return listen
