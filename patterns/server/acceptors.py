"""The server's side of its acceptor processes (:mod:`patterns.server.acceptor`): starting
them on the listening socket, keeping each told what it needs, folding what they journal into
the store, starting one again when it dies, and stopping them first on a stop.

Each acceptor ``aK`` has, per app, its own journal segment (``.patterns/intake-aK.journal``)
and one channel (a socket pair) to this process, served by a thread here. An acceptor writes
how far its segment of app X is durable into the segment's ``.end`` file before it answers;
the app's :class:`~patterns.server.webhooks.WebhookIntake` (the same committer as the
server's own journal: each commit keeps, in the same store transaction as the rows, the
node's offset in every segment) reads those files when idle and queues the new records (an
acceptor says it over the channel only at its start and its stop). A read through the API queues, first, what every segment's
``.end`` file says is durable (:meth:`WebhookIntake.settle`). At start the server replays
every segment it finds before any acceptor starts.

What an acceptor is told (a webhook's token, node, table and limits; its table's columns;
whether the store fails) is sent again whenever it changes, checked every :data:`TICK`
seconds, and at once, waiting for every acceptor's confirmation, before a reload of an app
takes effect: a webhook removed by a reload is refused by every acceptor before the reload
is in force (an acceptor that does not confirm within :data:`CONFIRM_WAIT` is killed and
started again, knowing the new app).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from patterns.errors import PatternsError

if TYPE_CHECKING:
    from patterns.graph.model import App
    from patterns.server.hub import AppService, Hub
    from patterns.server.security import Access

log = logging.getLogger("patterns.server")

FRAME = struct.Struct("<I")
#: How often what the acceptors know is checked for changes (the store failing, a
#: webhook's settings; a reload is pushed at once, not on this tick).
TICK = 0.25
#: How often the webhooks' tables' columns are read again (a table not described yet: at
#: every tick). Reading them costs a store read, too much for every tick under load.
TABLES_EVERY = 2.0
#: Longest a reload waits for every acceptor to confirm it knows the new app.
CONFIRM_WAIT = 2.0
#: Longest the start waits for an acceptor to be ready.
START_WAIT = 60.0
#: The settings of a webhook an acceptor applies itself.
_LIMITS = ("max_body_bytes", "max_records_per_request", "max_fields_per_record")


@dataclass
class Slot:
    """One acceptor: its segment name, its process and its channel."""

    segment: str
    proc: subprocess.Popen[bytes] | None = None
    sock: socket.socket | None = None
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    confirmed: int = 0  # the last config version it confirmed
    ready: threading.Event = field(default_factory=threading.Event)


class Acceptors:
    """``count`` acceptor processes on ``listener``; the server serves ``socket_path``."""

    def __init__(self, hub: Hub, listener: socket.socket, count: int, access: Access,
                 socket_path: str) -> None:
        self.hub = hub
        self.listener = listener
        self.access = access
        self.socket_path = socket_path
        self.slots = [Slot(f"a{k + 1}") for k in range(count)]
        self._cond = threading.Condition()
        self._version = 0
        self._sent: dict[str, Any] = {}  # what was last sent (without floors), by app
        self._override: dict[str, App] = {}  # an app being reloaded -> its new App
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._tables_read = 0.0  # (monotonic) when the tables' columns were last read

    # ------------------------------------------------------------------ life
    def start(self) -> None:
        for svc in self.hub.apps.values():
            svc.on_reload = self._reloading
        self._sent = self._describe()
        for slot in self.slots:
            self._spawn(slot)
            thread = threading.Thread(target=self._serve, args=(slot,), daemon=True,
                                      name=f"patterns-acceptor-{slot.segment}")
            thread.start()
            self._threads.append(thread)
        deadline = time.monotonic() + START_WAIT
        for slot in self.slots:
            if not slot.ready.wait(max(0.0, deadline - time.monotonic())):
                raise PatternsError(f"the webhook acceptor {slot.segment} did not start "
                                    f"within {START_WAIT:g} s (see the lines above)")
        watcher = threading.Thread(target=self._watch, daemon=True, name="patterns-acceptors")
        watcher.start()
        self._threads.append(watcher)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the acceptors (each finishes the requests it has, which need this process
        to queue their records), before the intake stops."""
        self._stopping.set()
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                with contextlib.suppress(OSError):
                    slot.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for slot in self.slots:
            if slot.proc is None:
                continue
            try:
                slot.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                slot.proc.kill()
                slot.proc.wait()
        for thread in self._threads:
            thread.join(timeout=5)
        for svc in self.hub.apps.values():
            svc.on_reload = None

    def pids(self) -> dict[str, int]:
        return {s.segment: s.proc.pid for s in self.slots if s.proc is not None}

    def _spawn(self, slot: Slot) -> None:
        mine, theirs = socket.socketpair()
        slot.sock = mine
        slot.ready.clear()
        slot.proc = subprocess.Popen(
            [sys.executable, "-m", "patterns.server.acceptor", slot.segment,
             str(self.listener.fileno()), str(theirs.fileno()), self.socket_path],
            pass_fds=(self.listener.fileno(), theirs.fileno()), stdin=subprocess.DEVNULL)
        theirs.close()
        self._send(slot, self._config(slot))

    # ------------------------------------------------------------------ the channel
    def _serve(self, slot: Slot) -> None:
        """Serve one acceptor's channel; start it again when it dies (until the stop)."""
        delay = 0.1
        while True:
            assert slot.sock is not None and slot.proc is not None
            started = time.monotonic()
            try:
                self._read(slot, slot.sock)
            except (OSError, ValueError) as exc:
                log.warning("webhook acceptor %s: its channel failed (%s)", slot.segment, exc)
            with contextlib.suppress(OSError):
                slot.sock.close()
            code = slot.proc.wait()
            if self._stopping.is_set():
                return
            log.warning("webhook acceptor %s ended (exit code %s); starting another",
                        slot.segment, code)
            delay = 0.1 if time.monotonic() - started > 10 else min(delay * 2, 5.0)
            if self._stopping.wait(delay):
                return
            try:
                self._spawn(slot)
            except OSError as exc:
                log.error("webhook acceptor %s could not start again: %s", slot.segment, exc)

    def _read(self, slot: Slot, sock: socket.socket) -> None:
        stream = sock.makefile("rb")
        while True:
            head = stream.read(FRAME.size)
            if len(head) < FRAME.size:
                return
            body = stream.read(FRAME.unpack(head)[0])
            msg = orjson.loads(body)
            if msg["t"] == "durable" and "id" in msg:  # (at its start: it waits)
                error = self._take(slot, msg["ends"])
                self._send(slot, {"t": "reply", "id": msg["id"], "error": error})
                slot.ready.set()
            elif msg["t"] == "durable":  # (answered already: read before the next commit)
                for slug, end in msg["ends"].items():
                    self.hub.apps[slug].webhooks.note_segment(slot.segment, int(end))
            elif msg["t"] == "configured":
                with self._cond:
                    slot.confirmed = max(slot.confirmed, int(msg["v"]))
                    self._cond.notify_all()

    def _take(self, slot: Slot, ends: dict[str, int]) -> str | None:
        """Queue what the acceptor made durable; None, or why it cannot be (then its
        requests get a 503: their records are folded at the next start, at most once)."""
        try:
            for slug, end in ends.items():
                self.hub.apps[slug].webhooks.take_segment(slot.segment, int(end))
        except PatternsError as exc:
            log.error("webhook acceptor %s: %s", slot.segment, exc)
            return str(exc)
        return None

    def _send(self, slot: Slot, msg: dict[str, Any]) -> None:
        body = orjson.dumps(msg)
        with slot.send_lock:
            if slot.sock is not None:
                with contextlib.suppress(OSError):
                    slot.sock.sendall(FRAME.pack(len(body)) + body)

    # ------------------------------------------------------------------ what they know
    def _watch(self) -> None:
        while not self._stopping.wait(TICK):
            try:
                self._push(wait=False)
                for slot in self.slots:
                    self._send(slot, {"t": "kept", "apps": {
                        slug: svc.webhooks.segment_kept(slot.segment)
                        for slug, svc in self.hub.apps.items()}})
            except Exception:  # (a bug: the acceptors keep what they know)
                log.exception("webhook acceptors: could not update them")

    def _reloading(self, svc: AppService, app: App) -> None:
        """``svc`` is about to serve ``app``: every acceptor knows it first."""
        with self._cond:
            self._override[svc.slug] = app
        self._push(wait=True)

    def _push(self, wait: bool) -> None:
        with self._cond:
            for slug, app in list(self._override.items()):
                if self.hub.apps[slug].app is app:
                    del self._override[slug]  # (the reload is in force)
            described = self._describe()
            if described == self._sent and not wait:
                return
            self._sent = described
            self._version += 1
            version = self._version
        for slot in self.slots:
            self._send(slot, self._config(slot))
        if not wait:
            return
        with self._cond:
            self._cond.wait_for(lambda: all(s.confirmed >= version for s in self.slots),
                                CONFIRM_WAIT)
            late = [s for s in self.slots if s.confirmed < version]
        for slot in late:  # (started again, it learns the new app from the start)
            log.warning("webhook acceptor %s did not confirm a reload within %g s: "
                        "restarting it", slot.segment, CONFIRM_WAIT)
            if slot.proc is not None:
                with contextlib.suppress(OSError):
                    slot.proc.kill()

    def _config(self, slot: Slot) -> dict[str, Any]:
        apps = {slug: {**doc, "floor": self.hub.apps[slug].webhooks.segment_floor(slot.segment)}
                for slug, doc in self._sent.items()}
        return {"t": "config", "v": self._version, "bound": self.access.bound,
                "hosts": sorted(self.access.hosts), "apps": apps}

    def _describe(self) -> dict[str, Any]:
        """Per app: its plain webhooks by token, their tables' columns, the store failing."""
        now = time.monotonic()
        fresh = now - self._tables_read >= TABLES_EVERY
        if fresh:
            self._tables_read = now
        return {slug: describe_app(svc, self._override.get(slug),
                                   None if fresh else self._sent.get(slug, {}).get("tables"))
                for slug, svc in self.hub.apps.items()}


def describe_app(svc: AppService, app: App | None = None,
                 known: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """(``known``: the tables' columns as last read, kept for the tables it has.)"""
    from patterns.engine.store_rules import store_rules
    from patterns.store.conform import MAX_COLUMNS
    from patterns.store.tables import table_rules

    app = app if app is not None else svc.app
    tokens = svc.webhook_tokens()
    hooks: dict[str, Any] = {}
    for node in app.nodes:
        extra = node.settings.extra
        if node.kind != "webhook" or node.id not in tokens or node.raw.get("respond") or \
                extra.get("webhook_query") or extra.get("webhook_headers"):
            continue  # (the server serves these: a response, a request's query or headers)
        hooks[tokens[node.id]] = {"node": node.id, "table": str(node.webhook_table),
                                  "extra": {k: extra.get(k) for k in _LIMITS}}
    rules = store_rules(app)
    max_columns = app.settings.max_columns or MAX_COLUMNS
    tables: dict[str, dict[str, str]] = {}
    names = {h["table"] for h in hooks.values()}
    if known is not None and names <= set(known):
        tables = {name: known[name] for name in names}
    elif names:
        with svc.engine.store.read() as view:
            for name in names:
                meta = view.tables.get(name)
                if meta is None:
                    continue
                rule = table_rules(name, meta.options, rules.get(name), max_columns)
                simple = rule.contract == "refuse" and not rule.declared
                tables[name] = meta.kinds() if simple else {}  # ({}: the server checks)
    return {"folder": str(svc.webhooks.folder), "hooks": hooks, "tables": tables,
            "failing": svc.webhooks.failure()}


def socket_dir() -> str:
    """A private folder for the server's Unix socket (the acceptors' way to it)."""
    import tempfile

    path = tempfile.mkdtemp(prefix="patterns-serve-")
    os.chmod(path, 0o700)
    return path
