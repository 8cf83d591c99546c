"""An acceptor process: takes requests on its own listening socket of the server's port
beside the other acceptors (SO_REUSEPORT: the kernel spreads new connections over them), so
webhook requests are parsed, checked and journaled on more than one core (docs/server.md,
"Acceptors"). Its connections speak HTTP/1.1 through :mod:`patterns.server.acceptor_http`.

A plain webhook request whose token it knows and whose records fit their table as the server
last described it is served here: the body parsed and checked, the records appended to this
acceptor's own journal segment of the app (``.patterns/intake-a1.journal``...) with group
commit, and answered 2xx once that segment's fsync covers them. Before answering, the
acceptor writes the offset its segment is durable up to into the segment's ``.end`` file,
which the server's committer reads when idle: a read through the API first queues what
every ``.end`` file covers, so it waits for every record acknowledged before it. Every other request —
the API, Studio, a response webhook, a token it does not know, records that would add a column
or need the table's contract — goes, as it came, to the server process over its private Unix
socket (:mod:`patterns.server.proxy`), which answers it as it would without acceptors.

The server sends what the acceptor needs over a socket pair (frames: a u32 length and JSON):
the webhooks (token, node, table, limits), their tables' columns, whether the store is
failing, where each segment may be cut. The acceptor ends when that channel closes (the
server stopped or was killed); a kill of the server also kills it (``PR_SET_PDEATHSIG``).

Run as ``python -m patterns.server.acceptor SEGMENT LISTENER_FD CONTROL_FD SOCKET_PATH``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import math
import os
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from patterns.server.acceptor_sync import MAX_FILES, SyncHelpers, die_with_parent
from patterns.server.answers import Unavailable
from patterns.server.bodies import BadBody, BodyLimits, parse_records
from patterns.server.ingest import (
    DEFAULT_MAX_BODY,
    _Gone,
    _host_header,
    _read_body,
    error_body,
    send_json,
)
from patterns.server.journal import (
    END,
    Journal,
    encode,
    end_file,
    segment_file,
    take_segment_lock,
)
from patterns.server.proxy import forward
from patterns.server.security import Access, Receive, Scope, Send, host_refusal

log = logging.getLogger("patterns.server")

FRAME = struct.Struct("<I")
_INT64 = (-(2**63), 2**63 - 1)
#: A segment is cut (its committed records dropped) once its file is this large.
ROTATE_BYTES = 4 * 1024 * 1024
#: A segment is kept zero-filled this far (an fsync then writes no new size: journal.py).
SEGMENT_RESERVE = 2 * ROTATE_BYTES
#: Most fsyncs of a segment in flight at once (each in a helper process).
SYNCS_IN_FLIGHT = 4
#: Told once a request's records are durable (None) or cannot be (why).
Done = Callable[[BaseException | None], None]
#: Given a request's answer: its status and JSON body.
Answer = Callable[[int, bytes], None]


@dataclass(frozen=True)
class Hook:
    """A plain webhook this acceptor serves."""

    node_id: str
    table: str
    max_body: int
    limits: BodyLimits


class AppIntake:
    """One app's webhooks and its journal segment, in this acceptor."""

    def __init__(self, slug: str, folder: Path, segment: str, floor: int,
                 zero_fill: bool = True) -> None:
        self.slug = slug
        self.lock = take_segment_lock(folder, segment)
        # (zero-filled only for an app with webhooks: 16 MB of disk with its spare)
        self.journal = Journal(folder / segment_file(segment), floor=floor,
                               reserve=SEGMENT_RESERVE if zero_fill else 0)
        self.journal.entries = []
        #: where this segment is durable up to, for the server to read (read-your-writes)
        self._end_fd = os.open(folder / end_file(segment), os.O_RDWR | os.O_CREAT, 0o600)
        self.hooks: tuple[tuple[bytes, Hook], ...] = ()
        self.tables: dict[str, dict[str, str]] = {}
        self.failing: str | None = None
        #: where the segment is durable up to (what is past it is written, its fsync not done)
        self.durable = self.journal.end
        #: counts failed fsyncs: a sync begun before one may not move ``durable`` on
        self.epoch = 0

    def publish(self) -> None:
        """Say how far the segment is durable (before the requests in it are answered)."""
        os.pwrite(self._end_fd, END.pack(self.durable), 0)

    def hook(self, token: str) -> Hook | None:
        given = token.encode("utf-8", "surrogatepass")
        found = None
        for known, hook in self.hooks:  # (each compared in constant time, all of them)
            if hmac.compare_digest(known, given):
                found = hook
        return found

    def configure(self, doc: dict[str, Any]) -> None:
        self.hooks = tuple(
            (token.encode(), Hook(h["node"], h["table"],
                                  int(h["extra"].get("max_body_bytes") or DEFAULT_MAX_BODY),
                                  BodyLimits.of(h["extra"])))
            for token, h in doc["hooks"].items())
        self.tables = doc["tables"]
        self.failing = doc["failing"]
        if self.hooks and not self.journal.reserve:  # (its first webhook came by a reload)
            self.journal.reserve_ahead(SEGMENT_RESERVE)


def fits(records: list[dict[str, Any]], columns: dict[str, str] | None) -> bool:
    """True when every value is one the table's column takes as it is (so the store's commit
    cannot refuse it): flat records, no new column. Anything else goes to the server, which
    checks it against the table as the requests before it leave it."""
    if not columns:
        return False
    for record in records:
        for name, value in record.items():
            kind = columns.get(name)
            if kind is None:
                return False
            if value is None:
                continue
            cls = type(value)
            if cls is str:
                if kind != "text":
                    return False
            elif cls is bool:
                if kind != "bool":
                    return False
            elif cls is int:
                if kind != "int" or not _INT64[0] <= value <= _INT64[1]:
                    return False
            elif cls is float:
                if kind != "float" or not math.isfinite(value):
                    return False
            else:
                return False
    return True


class Acceptor:
    """The acceptor's ASGI app, its journal segments and its channel to the server."""

    def __init__(self, segment: str, control: socket.socket, socket_path: str,
                 helpers: SyncHelpers | None = None) -> None:
        self.segment = segment
        #: the processes that fsync the segments (None: fsync'd on the loop, one at a time)
        self.helpers = helpers
        self.control = control
        self.socket_path = socket_path
        self.apps: dict[str, AppIntake] = {}
        self.access = Access(token="")
        # (parsing an address costs microseconds: one Host repeats)
        self._host_ok: Callable[[str], bool] = functools.lru_cache(maxsize=256)(
            self.access.host_allowed)
        self.serving = False
        self.stop = asyncio.Event()  # (set when the channel closes, or on SIGTERM/SIGINT)
        self._writer: asyncio.StreamWriter | None = None
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next = 0
        self._waiting: list[tuple[AppIntake, bytes, Done]] = []
        self._gathering = False  # (a group is to be written at the end of this loop pass)
        self._syncs = 0  # fsyncs in flight
        #: written, not yet answered: (app, the segment's end after them, their requests)
        self._unanswered: list[tuple[AppIntake, int, list[Done]]] = []
        self._configured = asyncio.Event()
        self._tasks: set[asyncio.Future[None]] = set()  # (kept: the loop holds weak refs)

    # ------------------------------------------------------------------ the channel
    async def connect(self) -> None:
        reader, self._writer = await asyncio.open_unix_connection(sock=self.control)
        self._tasks.add(asyncio.ensure_future(self._read(reader)))
        await self._configured.wait()
        for app in self.apps.values():
            app.publish()
        ends = {slug: app.durable for slug, app in self.apps.items()}
        await self.ask({"t": "durable", "ends": ends})  # (what a killed one left: queued)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                size = FRAME.unpack(await reader.readexactly(FRAME.size))[0]
                self._message(orjson.loads(await reader.readexactly(size)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        for reply in self._replies.values():
            if not reply.done():
                reply.set_exception(Unavailable("the server is stopping"))
        if self.serving:
            self.stop.set()
        else:
            os._exit(0)

    def _message(self, msg: dict[str, Any]) -> None:
        kind = msg["t"]
        if kind == "reply":
            reply = self._replies.pop(msg["id"], None)
            if reply is not None and not reply.done():
                reply.set_result(msg)
        elif kind == "config":
            self._configure(msg)
            self._send({"t": "configured", "v": msg["v"]})
        elif kind == "kept":
            for slug, keep in msg["apps"].items():
                app = self.apps.get(slug)
                if app is not None and app.journal.size() >= ROTATE_BYTES and not self._syncs:
                    app.journal.rotate(int(keep))

    def _configure(self, msg: dict[str, Any]) -> None:
        access = Access(token="", bound=msg["bound"], hosts=frozenset(msg["hosts"]))
        if access != self.access:  # (parsing an address costs microseconds: one Host repeats)
            self.access = access
            self._host_ok = functools.lru_cache(maxsize=256)(access.host_allowed)
        for slug, doc in msg["apps"].items():
            app = self.apps.get(slug)
            if app is None:
                # (an app added by a reload while serving gets its zeros from a thread, by
                # its first rotation: 8 MB written and fsync'd here would stall the loop)
                app = self.apps[slug] = AppIntake(slug, Path(doc["folder"]), self.segment,
                                                  int(doc["floor"]),
                                                  bool(doc["hooks"]) and not self.serving)
            app.configure(doc)
        self._configured.set()

    def _send(self, msg: dict[str, Any]) -> None:
        assert self._writer is not None
        body = orjson.dumps(msg)
        self._writer.write(FRAME.pack(len(body)) + body)

    async def ask(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Send ``msg`` and wait for the server's reply."""
        self._next += 1
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[self._next] = reply
        self._send({**msg, "id": self._next})
        return await reply

    # ------------------------------------------------------------------ group commit
    def submit(self, app: AppIntake, blob: bytes, done: Done) -> None:
        """Put ``blob`` in the app's segment; ``done(None)`` once it is durable (and told to
        the server), ``done(Unavailable)`` if it cannot be."""
        self._waiting.append((app, blob, done))
        if not self._gathering and self._can_sync():
            self._gathering = True  # (the requests of this loop pass go as one group)
            asyncio.get_running_loop().call_soon(self._write_group)

    def _can_sync(self) -> bool:
        helpers = self.helpers
        if helpers is None or not helpers.live:
            return not self._syncs
        return helpers.idle() > 0

    def _write_group(self) -> None:
        """Write what waits, one write per segment, and fsync it: on the loop when no write
        made its file longer (a zero-filled segment: the usual case), else in a helper
        process. Up to ``SYNCS_IN_FLIGHT`` groups are fsync'd at once in helpers: a request
        need not wait for the fsync that was in flight when it came, only for one begun
        after it was written.

        Why the loop: an fdatasync into a segment's zeros flushes data only and took 0.1 to
        0.4 ms here, while the hand-off to a helper (its wake-up, the answer's) added 0.3 to
        0.5 ms to each group and 15 µs of CPU to each request (bench/RESULTS.md, target 7's
        seventh pass); the loop waits meanwhile and the next group gathers what came. A file
        that grows makes each fsync write its size too (3 to 4 ms alone on that disk), where
        overlapping them in helpers pays."""
        self._gathering = False
        if not self._waiting:
            return
        group, self._waiting = self._waiting, []
        by_app: dict[AppIntake, list[tuple[bytes, Done]]] = {}
        for app, blob, done in group:
            by_app.setdefault(app, []).append((blob, done))
        written: list[tuple[AppIntake, int, int]] = []
        for app, items in by_app.items():
            try:
                app.journal.write([blob for blob, _ in items])
            except Exception as exc:
                _fail([done for _, done in items], exc)
                continue
            written.append((app, app.journal.end, app.epoch))
            self._unanswered.append((app, app.journal.end, [done for _, done in items]))
        if not written:
            return
        self._syncs += 1
        apps = [app for app, _, _ in written]
        helpers = self.helpers
        if helpers is None or not helpers.live or not helpers.idle() or \
                len(apps) > MAX_FILES or not any(app.journal.grew for app in apps):
            self._synced(written, _sync_all(apps))  # (on the loop: blocks it meanwhile)
            return
        sizes = [app.journal.size() for app in apps]

        def told(outcome: list[OSError | None]) -> None:
            failed: dict[int, Exception] = {}
            for i, (app, size, error) in enumerate(zip(apps, sizes, outcome, strict=True)):
                if written[i][2] != app.epoch:  # (begun before a failed one: see _synced)
                    continue
                try:
                    app.journal.synced_elsewhere(size, error)
                except Exception as exc:
                    failed[i] = exc
            self._synced(written, failed)

        helpers.sync([app.journal.fileno() for app in apps], told)

    def _synced(self, written: list[tuple[AppIntake, int, int]],
                failed: dict[int, Exception]) -> None:
        """A group's fsync ended: everything written before it began is durable (an fsync
        covers the whole file), so answer every request up to there, in order."""
        self._syncs -= 1
        for i, (app, end, epoch) in enumerate(written):
            if epoch != app.epoch:  # (begun before a failed one: its records were refused)
                continue
            if i in failed:  # (not durable: cut off, and everything unanswered refused)
                app.epoch += 1
                app.journal.discard_unsynced(app.durable)  # (refused: none stays)
                self._refuse(app, failed[i])
            elif end > app.durable:
                app.durable = end
        self._answer()
        if self._waiting and not self._gathering and self._can_sync():
            self._gathering = True
            asyncio.get_running_loop().call_soon(self._write_group)

    def _refuse(self, app: AppIntake, error: Exception) -> None:
        kept = []
        for entry in self._unanswered:
            if entry[0] is app:
                _fail(entry[2], error)
            else:
                kept.append(entry)
        self._unanswered = kept

    def _answer(self) -> None:
        """Answer the written requests now durable (the server told first; not waited for)."""
        ready = [entry for entry in self._unanswered if entry[1] <= entry[0].durable]
        if not ready:
            return
        self._unanswered = [entry for entry in self._unanswered if entry[1] > entry[0].durable]
        for app in {entry[0] for entry in ready}:
            app.publish()  # (the server's committer reads it: not told per fsync)
        for _, _, callbacks in ready:
            for done in callbacks:
                done(None)

    def tell(self) -> None:
        """Tell the server how far the segments are durable (not waited for: its committer
        reads them before its next commit). While it serves, the server reads the ``.end``
        files instead: its committer every ``COMMIT_LINGER``, an API read before it reads."""
        if self.apps and self._writer is not None:
            self._send({"t": "durable",
                        "ends": {slug: app.durable for slug, app in self.apps.items()}})

    async def finish(self) -> None:
        """Tell the server what the last requests made durable (else it is folded at the
        next start), and wait until it is sent."""
        self.tell()
        if self._writer is not None:
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    # ------------------------------------------------------------------ requests
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            parts = scope["path"].split("/")
            if len(parts) == 4 and parts[1] == "webhooks" and parts[2] and parts[3]:
                app = self.apps.get(parts[2])
                hook = app.hook(parts[3]) if app is not None else None
                if app is not None and hook is not None:
                    await self._webhook(app, hook, scope, receive, send)
                    return
        if scope["type"] == "http":
            await forward(self.socket_path, scope, receive, send)
        elif scope["type"] == "websocket":  # (the API has none: as the server answers)
            await receive()
            await send({"type": "websocket.close", "code": 1008})

    async def _webhook(self, app: AppIntake, hook: Hook, scope: Scope, receive: Receive,
                       send: Send) -> None:
        refused = self.refused(_host_header(scope))
        if refused is not None:
            await send_json(send, refused[0], refused[1])
            return
        try:
            body = await _read_body(scope, receive, hook.max_body)
        except _Gone:
            return
        if body is None:
            await send_json(send, 413, too_large(hook))
            return
        answer = await self.ingest(app, hook, body)
        if answer is None:
            await forward(self.socket_path, scope, receive, send, body)
            return
        await send_json(send, answer[0], answer[1])

    def refused(self, host: str) -> tuple[int, bytes] | None:
        """(403, the answer) unless the request's Host (lower-cased; "" when it has none or
        several) names this server."""
        refused = host_refusal(host, self._host_ok)
        return None if refused is None else (refused[0], error_body(refused[1]))

    async def ingest(self, app: AppIntake, hook: Hook, body: bytes) -> tuple[int, bytes] | None:
        """(status, the JSON answer) to a plain webhook request with this body, its records
        durable if 200; None: the server is to answer it (records that may not fit their
        table as this acceptor knows it)."""
        answered: asyncio.Future[tuple[int, bytes]] = \
            asyncio.get_running_loop().create_future()
        if not self.take(app, hook, body, lambda status, answer: answered.set_result(
                (status, answer))):
            return None
        return await answered

    def take(self, app: AppIntake, hook: Hook, body: bytes, answer: Answer) -> bool:
        """Serve a plain webhook request with this body: ``answer(status, JSON)`` is called
        once, at once or when its records are durable. False: not taken, the server is to
        answer it (records that may not fit their table as this acceptor knows it)."""
        try:
            records = parse_records(body, hook.limits)
        except BadBody as exc:
            answer(exc.status, error_body(exc.message))
            return True
        if not fits(records, app.tables.get(hook.table)):
            return False
        if app.failing is not None:
            answer(503, error_body(
                f"the records could not be stored, nothing was written: the store cannot "
                f"commit now ({app.failing}); try again later"))
            return True
        count = len(records)

        def done(error: BaseException | None) -> None:
            if error is None:
                answer(200, b'{"ok":true,"records":%d}' % count)
            else:
                answer(503, error_body(f"the records could not be stored, nothing was "
                                       f"written: {error}"))

        self.submit(app, encode(hook.node_id, hook.table, records), done)
        return True


def too_large(hook: Hook) -> bytes:
    """The 413 answer of a body past the webhook's limit."""
    return error_body(f"the body is larger than this webhook's limit of {hook.max_body} "
                      f"bytes (settings.max_body_bytes)")


def _sync_all(apps: list[AppIntake]) -> dict[int, Exception]:
    """fsync each app's segment here (without helpers); the ones that failed, by index."""
    failed: dict[int, Exception] = {}
    for i, app in enumerate(apps):
        try:
            app.journal.sync()
        except Exception as exc:
            failed[i] = exc
    return failed


def _fail(callbacks: list[Done], exc: BaseException) -> None:
    error = exc if isinstance(exc, Unavailable) else Unavailable(str(exc))
    for done in callbacks:
        done(error)


def own_listener(server: socket.socket) -> socket.socket:
    """This acceptor's listening socket: its own on the server's port when the server's is
    bound with SO_REUSEPORT (the kernel spreads new connections over the acceptors' sockets
    by their addresses; one socket shared by all lets one acceptor take a burst of them
    all), else the server's own. Listening before the acceptor says it is ready: the server
    announces its URL only then."""
    if not hasattr(socket, "SO_REUSEPORT") or \
            not server.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT):
        return server
    own = socket.socket(server.family, socket.SOCK_STREAM)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    own.bind(server.getsockname())
    own.listen(2048)
    server.close()
    return own


async def _main(segment: str, listener: socket.socket, control: socket.socket,
                socket_path: str, helpers: SyncHelpers | None) -> None:
    import signal

    import uvicorn

    from patterns.server.acceptor_http import serve

    acceptor = Acceptor(segment, control, socket_path, helpers)
    if helpers is not None:
        helpers.start()

        def lost() -> None:  # (its sync was refused; the server starts another acceptor)
            log.warning("an fsync helper ended; this acceptor stops")
            acceptor.stop.set()

        helpers.on_lost = lost
    await acceptor.connect()
    # (uvicorn serves the connections a plain webhook request does not start: the API)
    config = uvicorn.Config(acceptor, lifespan="off", log_level="warning", access_log=False,
                            timeout_graceful_shutdown=30)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, acceptor.stop.set)
    acceptor.serving = True
    await serve(acceptor, listener, config, acceptor.stop)
    await acceptor.finish()


def main(argv: list[str]) -> None:
    die_with_parent()
    segment, listener_fd, control_fd, socket_path = argv
    if os.getppid() == 1:  # (the server died before this started)
        return
    listener = own_listener(socket.socket(fileno=int(listener_fd)))
    control = socket.socket(fileno=int(control_fd))
    logging.basicConfig(level=logging.WARNING, format=f"acceptor {segment}: %(message)s")
    helpers = None
    if hasattr(os, "fork") and hasattr(socket, "recv_fds"):  # (before the loop and journals)
        try:
            helpers = SyncHelpers(SYNCS_IN_FLIGHT)
        except OSError as exc:  # (no process to spare: fsync on the loop, as documented)
            logging.warning("cannot start fsync helpers (%s); syncing on the loop", exc)
    try:
        import uvloop

        uvloop.run(_main(segment, listener, control, socket_path, helpers))
    except ImportError:
        asyncio.run(_main(segment, listener, control, socket_path, helpers))


if __name__ == "__main__":
    main(sys.argv[1:])
