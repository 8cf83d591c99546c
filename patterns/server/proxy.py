"""An acceptor hands a request it does not serve itself to the server process: the request is
sent, as it came, over the server's private Unix socket, and the answer is relayed back as it
comes (streamed: a live event stream or a download goes through as it is produced).

h11 (which uvicorn itself uses) writes and reads the HTTP/1.1 on that socket: a small,
well-kept parser, so no HTTP framing is our own code. One connection per request, closed
after it (the API's requests are few next to webhook requests; a connection on a Unix socket
costs tens of microseconds).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import h11

from patterns.server.security import Receive, Scope, Send

#: Headers of one hop, not passed on (each side frames its own connection).
_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                  b"upgrade", b"expect"})
_READ = 64 * 1024


async def forward(socket_path: str, scope: Scope, receive: Receive, send: Send,
                  body: bytes | None = None) -> None:
    """Serve the request by the server process. ``body``: the request's body when it was
    read already (then ``receive`` is used only to notice a disconnect)."""
    from patterns.server.ingest import send_json

    # (the socket itself, not streams: when the server answers before it has read the whole
    # request — a 404, a 413 — and closes, a stream's failed write would drop the answer;
    # the socket still reads it)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        try:
            await loop.sock_connect(sock, socket_path)
        except OSError as exc:
            await send_json(send, 503, {"error": f"the server is not answering "
                                                 f"({exc.strerror}); try again in a moment"})
            return
        await _relay(_Upstream(loop, sock), scope, receive, send, body)
    finally:
        sock.close()


class _Upstream:
    """The connection to the server: writes stop quietly once it has closed its side."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        self.loop = loop
        self.sock = sock
        self.open = True

    async def write(self, data: bytes | None) -> None:
        if data and self.open:
            try:
                await self.loop.sock_sendall(self.sock, data)
            except OSError:
                self.open = False  # (it answered already: the answer is still read)

    async def read(self) -> bytes:
        try:
            return await self.loop.sock_recv(self.sock, _READ)
        except OSError:
            return b""


async def _relay(upstream: _Upstream, scope: Scope, receive: Receive, send: Send,
                 body: bytes | None) -> None:
    conn = h11.Connection(h11.CLIENT)
    headers = [(name, value) for name, value in scope["headers"] if name not in _HOP]
    if body is not None:
        headers = [(n, v) for n, v in headers
                   if n not in (b"content-length", b"transfer-encoding")]
        headers.append((b"content-length", b"%d" % len(body)))
    headers.append((b"connection", b"close"))
    has_host = any(name == b"host" for name, _ in headers)
    target = scope.get("raw_path") or scope["path"].encode("utf-8")
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    request = h11.Request(method=scope["method"], target=target, headers=headers,
                          http_version="1.1" if has_host else "1.0")
    if body is not None:  # (one write: the request and its body)
        await upstream.write((conn.send(request) or b"") + (
            conn.send(h11.Data(data=body)) or b"" if body else b"") + (
            conn.send(h11.EndOfMessage()) or b""))
    else:
        await upstream.write(conn.send(request))
        framed = any(n in (b"content-length", b"transfer-encoding") for n, _ in headers)
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            if chunk and framed:
                await upstream.write(conn.send(h11.Data(data=chunk)))
            if not message.get("more_body", False):
                break
        await upstream.write(conn.send(h11.EndOfMessage()))
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        await _answer(conn, upstream, send, gone)
    finally:
        gone.cancel()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _answer(conn: h11.Connection, upstream: _Upstream, send: Send,
                  gone: asyncio.Future[None]) -> None:
    """Relay the server's answer; stop when the client goes away."""
    from patterns.server.ingest import send_json

    started = False
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            read: asyncio.Future[bytes] = asyncio.ensure_future(upstream.read())
            waits: set[asyncio.Future[Any]] = {read, gone}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if not read.done():
                read.cancel()
                return  # the client went away: the server's side is closed with it
            conn.receive_data(read.result())
            continue
        if isinstance(event, h11.Response):
            started = True
            await send({"type": "http.response.start", "status": event.status_code,
                        "headers": [(n, v) for n, v in event.headers
                                    if n not in _HOP and n != b"transfer-encoding"]})
        elif isinstance(event, h11.Data):
            await send({"type": "http.response.body", "body": bytes(event.data),
                        "more_body": True})
        elif isinstance(event, h11.EndOfMessage):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            if not started:
                await send_json(send, 502, {"error": "the server closed the connection "
                                                     "before answering; try again"})
            return
        # (an informational response, 1xx: the client's side has its own)
