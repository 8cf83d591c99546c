"""An acceptor's HTTP/1.1 connections: plain webhook requests served straight from the
parser, everything else handed to uvicorn (docs/server.md, "Acceptors").

A connection is parsed by httptools (llhttp, the C parser uvicorn itself uses). A
``POST /webhooks/{app}/{token}`` whose webhook the acceptor serves is answered here, without
an ASGI scope, task or message per request: the Host check, the body limit, the parse and
check of the records, the journal, and the answer — the same statuses and
``{"error": ...}`` bodies as the ASGI path (:meth:`Acceptor.ingest`). Any other request
(the API, Studio, an unknown token, an upgrade) hands the connection over to uvicorn's own
httptools protocol, which serves it with the acceptor's ASGI app from then on: the bytes
since that request began are given to it as they came. (When that request began in the
middle of what the socket read, after a webhook request pipelined before it, its bytes
are passed as parsed — head, body, chunk framing — until a message ends with a read.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

import httptools

from patterns.server.proxy import forward

if TYPE_CHECKING:
    from uvicorn import Config

    from patterns.server.acceptor import Acceptor, AppIntake, Hook

#: What a request this module serves begins with (others go to uvicorn at once).
MARK = b"POST /webhooks/"
#: An idle connection is closed after this long (uvicorn's own default).
KEEP_ALIVE = 5.0
#: Requests parsed ahead of their answers (pipelined) before reading pauses.
AHEAD = 32
#: A request's line and headers: at most this many bytes (431 past it) ...
MAX_HEAD = 64 * 1024
#: ... read within this many seconds of its first byte, and the whole request within
#: :data:`MAX_REQUEST_SECONDS` (a client sending a byte now and then is closed).
HEAD_SECONDS = 10.0
MAX_REQUEST_SECONDS = 60.0
_REASON = {s.value: s.phrase.encode() for s in HTTPStatus}
_PASSED = frozenset({b"content-length", b"transfer-encoding", b"connection", b"keep-alive"})


class _Stop(Exception):
    """Raised in a parser's call to stop reading the connection (its last answer is owed)."""


class Connections:
    """What an acceptor's connections share: the acceptor, and uvicorn's protocol for the
    connections handed to it."""

    def __init__(self, acceptor: Acceptor, config: Config) -> None:
        from uvicorn.server import ServerState

        config.load()
        self.acceptor = acceptor
        self.config = config
        self.state = ServerState()
        self.lean: set[HookConnection] = set()
        self.stopping = False

    def __call__(self) -> HookConnection:
        return HookConnection(self)

    def sweep(self) -> None:
        """Close the connections idle past :data:`KEEP_ALIVE`, and those whose request's
        head or whole takes longer than :data:`HEAD_SECONDS` / :data:`MAX_REQUEST_SECONDS`
        to come."""
        now = time.monotonic()
        for conn in list(self.lean):
            idle = conn.idle() and now - conn.last > KEEP_ALIVE
            slow = conn.began is not None and not conn.owed and (
                now - conn.began > MAX_REQUEST_SECONDS
                or (conn.head_size is not None and now - conn.began > HEAD_SECONDS))
            if idle or slow:
                conn.close()

    async def shutdown(self, timeout: float) -> None:
        """Finish the requests in progress (up to ``timeout``), then close every connection."""
        self.stopping = True
        for conn in list(self.lean):
            if conn.idle():
                conn.close()
        for handed in list(self.state.connections):
            handed.shutdown()
        deadline = time.monotonic() + timeout
        while (self.lean or self.state.tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.lean):
            conn.close()
        for task in list(self.state.tasks):
            task.cancel()


class HookConnection(asyncio.Protocol):
    """One connection while it carries plain webhook requests."""

    def __init__(self, shared: Connections) -> None:
        self.shared = shared
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.last = time.monotonic()
        self.pending = b""  # (the start of a request too short to tell where it goes)
        self.in_message = False
        self.at_start = False  # (a message that begins now begins with the bytes read)
        self.raw: bytearray | None = None  # the message's bytes as read, when known
        self.passing: bytearray | None = None  # bytes for uvicorn, once it takes over
        self.parsed = False  # (``passing`` is being built from what the parser gives)
        self.chunked = False
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.target: tuple[AppIntake, Hook] | None = None
        self.over = False  # (the body is past the webhook's limit: read, not kept)
        self.began: float | None = None  # (when the request being read began)
        self.head_size: int | None = 0  # (its line and headers so far; None once read)
        self.head_bytes = 0  # (bytes read while its head is incomplete: llhttp keeps them)
        #: an answer that closes the connection is owed: nothing after it is read
        self.closing = False
        #: the answers owed, in the requests' order: [status, body, keep-alive]; status 0
        #: while the request waits for its fsync (or the server)
        self.owed: deque[list[Any]] = deque()
        self.paused = False
        self.lost: asyncio.Future[None] | None = None
        self.broken = False  # (not HTTP: answered 400, and closed)
        self.tasks: set[asyncio.Future[None]] = set()  # (kept: the loop's refs are weak)

    # ------------------------------------------------------------------ the connection
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # (uvloop's is not a subclass)
        self.lost = asyncio.get_running_loop().create_future()
        self.shared.lean.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.shared.lean.discard(self)
        self.owed.clear()
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)

    def idle(self) -> bool:
        return not (self.owed or self.in_message or self.pending)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.shared.lean.discard(self)

    def data_received(self, data: bytes) -> None:
        self.last = time.monotonic()
        if self.broken or self.closing:
            return
        if self.passing is not None and not self.parsed:  # (uvicorn's, once the queue ends)
            self.passing += data
            return
        if not self.in_message and self.passing is None:  # (a request begins here)
            if self.pending:
                data, self.pending = self.pending + data, b""
            if not data.startswith(MARK):
                if MARK.startswith(data):  # (too short to tell yet)
                    self.pending = data
                    self.began = self.began or self.last  # (a head's time runs from here)
                    return
                self.passing = bytearray(data)
                self._flush()  # (handed over once the requests before it are answered)
                return
            self.raw = bytearray(data)
            self.at_start = True
            self.began = self.began or self.last
        elif self.raw is not None:
            self.raw += data
        if self.head_size is not None and self.passing is None:
            if self.head_bytes > MAX_HEAD:  # (one header past the limit, not yet whole)
                self._too_large()
                self._flush()
                return
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:  # (uvicorn's from here on)
            if self.parsed and self.passing is not None:
                self.passing += data[exc.args[0]:]
                self.parsed = False
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _Stop):
                raise
            self._flush()  # (an answer that closes the connection is owed: no more is read)
            return
        except httptools.HttpParserError:
            if self.passing is not None:  # (uvicorn's: it will find what is wrong)
                self.parsed = False
                self._flush()
                return
            self.broken = True
            self.owed.append([400, b'{"error":"the request is not valid HTTP/1.1"}', False])
            self._flush()
            return
        self.at_start = False
        if self.passing is not None and not self.in_message:
            self.parsed = False  # (at a message's end: what follows is passed as it comes)
        self._flush()

    # ------------------------------------------------------------------ the parser's calls
    def on_message_begin(self) -> None:
        if self.closing:
            raise _Stop  # (a request after one that closes the connection: never taken)
        self.in_message = True
        if not self.at_start:
            self.raw = None  # (it began after another in the same read)
            self.began = time.monotonic()
        self.at_start = False
        self.head_size = self.head_bytes = 0
        self.url = b""
        self.headers = []
        self.body = []
        self.size = 0
        self.target = None
        self.over = False
        self.chunked = False

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))
        self._head(len(name) + len(value))

    def _head(self, size: int) -> None:
        if self.head_size is None or self.passing is not None:
            return  # (uvicorn's request: its own limits)
        self.head_size += size
        if self.head_size > MAX_HEAD:
            self._too_large()
            raise _Stop

    def _too_large(self) -> None:
        self._close_with(431, b'{"error":"the request\'s headers are too large (at most '
                         b'%d bytes)"}' % MAX_HEAD)

    def on_headers_complete(self) -> None:
        self.head_size, self.head_bytes = None, 0
        if self.passing is not None:
            if self.parsed:
                self._pass_head()
            return
        self.target = None if self.parser.should_upgrade() else self._webhook()
        if self.target is None:  # (not ours: uvicorn's, from this request on)
            if self.raw is not None:
                self.passing = self.raw
            else:
                self.passing = bytearray()
                self.parsed = True
                self._pass_head()
            return
        self.raw = None  # (ours: its bytes are not kept, only its body up to the limit)
        expects = False
        for name, value in self.headers:
            if name == b"content-length" and value.isdigit() and \
                    int(value) > self.target[1].max_body:
                self.over = True
            elif name == b"expect" and value.lower() == b"100-continue":
                expects = True
        if expects and not self.over:  # (in order: after the answers owed before it)
            self.owed.append([100, b"", True])
            self._flush()

    def on_body(self, body: bytes) -> None:
        if self.passing is not None:
            if self.parsed:
                self.passing += b"%x\r\n%s\r\n" % (len(body), body) if self.chunked else body
            return
        if self.over or self.target is None:
            return
        self.size += len(body)
        if self.size > self.target[1].max_body:
            self.over = True
            self.body = []
        else:
            self.body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self.began = None
        if self.passing is not None:
            if self.parsed and self.chunked:
                self.passing += b"0\r\n\r\n"
            return
        if self.target is None:
            return
        keep = self.parser.should_keep_alive()
        if self.over:
            from patterns.server.acceptor import too_large

            self._close_with(413, too_large(self.target[1]))
            raise _Stop
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self._request(self.target, _host(self.headers), body, keep)
        if not keep:  # (the client closes after this answer: nothing after it is taken)
            self.closing = True
            raise _Stop
        if len(self.owed) >= AHEAD and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def _webhook(self) -> tuple[AppIntake, Hook] | None:
        """The app and webhook of ``POST /webhooks/{app}/{token}``, when served here."""
        path = self.url.partition(b"?")[0]
        parts = path.split(b"/")
        if len(parts) != 4 or not parts[2] or not parts[3] or b"%" in path:
            return None
        try:
            slug, token = parts[2].decode("ascii"), parts[3].decode("ascii")
        except UnicodeDecodeError:
            return None
        app = self.shared.acceptor.apps.get(slug)
        hook = app.hook(token) if app is not None else None
        return None if app is None or hook is None else (app, hook)

    def _pass_head(self) -> None:
        assert self.passing is not None
        version = self.parser.get_http_version().encode()
        self.passing += b"%s %s HTTP/%s\r\n" % (self.parser.get_method(), self.url, version)
        for name, value in self.headers:
            self.passing += b"%s: %s\r\n" % (name, value)
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                self.chunked = True
        self.passing += b"\r\n"

    def _close_with(self, status: int, body: bytes) -> None:
        """Answer ``status`` once the answers before it are written, then close; a request
        pipelined after it is not read (its client sends it again on a new connection)."""
        self.closing = True
        self.owed.append([status, body, False])

    # ------------------------------------------------------------------ answers, in order
    def _request(self, target: tuple[AppIntake, Hook], host: str, body: bytes,
                 keep: bool) -> None:
        """Serve one webhook request: its answer is owed until its records are durable."""
        owed = [0, b"", keep]
        self.owed.append(owed)
        acceptor = self.shared.acceptor
        refused = acceptor.refused(host)
        if refused is not None:
            owed[0], owed[1] = refused
            return
        app, hook = target

        def answer(status: int, body: bytes) -> None:
            owed[0], owed[1] = status, body
            self._flush()

        if not acceptor.take(app, hook, body, answer):  # (the server checks these records)
            task = asyncio.ensure_future(self._forward(body, answer))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _flush(self) -> None:
        """Write the answers ready, in order; hand the connection to uvicorn once nothing
        is owed, if it is to have it."""
        owed = self.owed
        while owed and owed[0][0]:
            status, body, keep = owed.popleft()
            if status == 100:  # (the body may come now)
                self._continue()
                continue
            # (a server stopping closes the connection after the last answer owed: each
            # request it took is answered)
            close = not keep or (self.shared.stopping and not owed and not self.in_message)
            self._write(status, body, close=close)
            if close:
                owed.clear()
                return
        self.last = time.monotonic()
        if self.paused and len(owed) < AHEAD // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        if not owed and self.passing is not None and not self.parsed:
            self._hand_over()

    async def _forward(self, body: bytes, answer: Callable[[int, bytes], None]) -> None:
        """The server's answer to this request (a webhook's answer: a small JSON body)."""
        path, _, query = self.url.partition(b"?")
        scope = {"type": "http", "method": "POST", "path": path.decode("ascii"),
                 "raw_path": path, "query_string": query, "headers": self.headers}
        got: dict[str, Any] = {"status": 502, "body": []}

        async def receive() -> dict[str, Any]:
            assert self.lost is not None
            await asyncio.shield(self.lost)
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                got["status"] = message["status"]
            else:
                got["body"].append(message.get("body", b""))

        await forward(self.shared.acceptor.socket_path, scope, receive, send, body)
        answer(got["status"], b"".join(got["body"]))

    def _continue(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _write(self, status: int, body: bytes, close: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(b"HTTP/1.1 %d %s\r\ncontent-length: %d\r\n"
                        b"content-type: application/json\r\n%s\r\n%s" % (
                            status, _REASON.get(status, b""), len(body),
                            b"connection: close\r\n" if close else b"", body))
        if close:
            transport.close()

    def _hand_over(self) -> None:
        """From now on uvicorn serves this connection; it reads what came first."""
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        assert self.transport is not None and self.passing is not None
        self.shared.lean.discard(self)
        if self.paused:
            self.transport.resume_reading()
        first, self.passing = bytes(self.passing), None
        if self.transport.is_closing():
            return
        proto = HttpToolsProtocol(self.shared.config, self.shared.state, {},
                                  asyncio.get_running_loop())
        self.transport.set_protocol(proto)
        proto.connection_made(self.transport)
        if first:
            proto.data_received(first)
        if self.shared.stopping:
            proto.shutdown()


def _host(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's Host header, lower-cased; "" when it has none or several."""
    found = ""
    seen = 0
    for name, value in headers:
        if name == b"host":
            found = value.decode("latin-1").strip().lower()
            seen += 1
    return found if seen == 1 else ""


async def serve(acceptor: Acceptor, listener: Any, config: Config,
                stop: asyncio.Event) -> None:
    """Serve ``listener`` until ``stop`` is set, then finish the requests in progress."""
    shared = Connections(acceptor, config)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(shared, sock=listener, backlog=2048)
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        if stop.is_set():
            break
        shared.sweep()
    server.close()
    await shared.shutdown(float(config.timeout_graceful_shutdown or 30))
