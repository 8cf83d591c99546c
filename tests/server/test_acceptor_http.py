"""An acceptor's own HTTP/1.1 (patterns/server/acceptor_http.py), spoken over raw sockets:
webhook requests split across reads, pipelined, chunked, with ``Expect: 100-continue``, in
HTTP/1.0, and API requests on the same connection before and after them — every request
answered in order, as the server would answer it, and every acknowledged record stored
once."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.server.conftest import Server
from tests.server.test_acceptors import hook, started_with_table, stored


def talk(server: Server, parts: list[bytes], answers: int) -> list[tuple[int, bytes]]:
    """Send ``parts`` on one connection (a pause between them: separate reads), then read
    ``answers`` answers: (status, body) each."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        for part in parts:
            sock.sendall(part)
            time.sleep(0.05)
        reader = sock.makefile("rb")
        found = []
        for _ in range(answers):
            status = int(reader.readline().split()[1])
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if status != 100:
                found.append((status, reader.read(length)))
            else:
                found.append((status, b""))
        return found


def post(path: str, n: int, headers: bytes = b"", version: bytes = b"1.1") -> bytes:
    body = b'{"n":%d}' % n
    return (b"POST %s HTTP/%s\r\nHost: 127.0.0.1\r\n%sContent-Length: %d\r\n\r\n%s"
            % (path.encode(), version, headers, len(body), body))


@pytest.mark.slow
def test_an_acceptor_answers_raw_http_requests_in_order(tmp_path: Path, serve: Any) -> None:
    server, _ = started_with_table(serve, tmp_path)
    path = urlsplit(hook(server)).path
    get = (b"GET /api/v1/apps/intake/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Authorization: Bearer %s\r\n\r\n" % server.token.encode())
    ok = b'{"ok":true,"records":1}'
    # pipelined in one write: two webhooks, then the API on the same connection
    answers = talk(server, [post(path, 1) + post(path, 2) + get], 3)
    assert answers[:2] == [(200, ok), (200, ok)]
    assert answers[2][0] == 200 and path.encode() in answers[2][1]
    # one request split over three reads
    request = post(path, 3)
    assert talk(server, [request[:5], request[5:30], request[30:]], 1) == [(200, ok)]
    # a chunked body
    chunked = (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\n{\"n\r\n4\r\n\":4}\r\n0\r\n\r\n" % path.encode())
    assert talk(server, [chunked], 1) == [(200, ok)]
    # the API first, a webhook after it on the same connection
    answers = talk(server, [get, post(path, 5)], 2)
    assert answers[0][0] == 200 and answers[1] == (200, ok)
    # HTTP/1.0; Expect: 100-continue
    assert talk(server, [post(path, 6, version=b"1.0")], 1) == [(200, ok)]
    assert talk(server, [post(path, 7, b"Expect: 100-continue\r\n")], 2) == [(100, b""),
                                                                             (200, ok)]
    # a webhook, then a chunked API request begun in the same read, then a webhook
    missing = (b"POST /api/v1/apps/intake/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Authorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n0\r\n\r\n" % server.token.encode())
    answers = talk(server, [post(path, 8) + missing + post(path, 9)], 3)
    assert answers[0] == (200, ok) and answers[2] == (200, ok)
    assert answers[1][0] == 404 and b"nothing at" in answers[1][1]
    # a Host this server does not answer to; a body that is not JSON; not HTTP
    evil = post(path, 10).replace(b"Host: 127.0.0.1", b"Host: evil.example")
    (status, body), = talk(server, [evil], 1)
    assert status == 403 and b"Host" in body
    (status, body), = talk(server, [post(path, 11).replace(b'{"n":11}', b'{"n":1}}')], 1)
    assert status == 400 and b"not valid JSON" in body
    (status, body), = talk(server, [b"POST /webhooks/ HTTP/1.1\r\nContent-Length: zz\r\n\r\n"],
                           1)
    assert status == 400 and b"error" in body
    assert stored(server) == list(range(10))
    assert server.stop() == 0
    assert not any("Traceback" in line for line in server.output), "".join(server.output)


def closed(sock: socket.socket) -> bytes:
    """Everything the acceptor sends until it closes the connection."""
    got = b""
    while chunk := sock.recv(65536):
        got += chunk
    return got


@pytest.mark.slow
def test_an_acceptor_closes_hostile_connections_without_taking_what_follows(
        tmp_path: Path, serve: Any) -> None:
    from patterns.server.acceptor_http import HEAD_SECONDS, MAX_HEAD

    server, _ = started_with_table(serve, tmp_path)
    path = urlsplit(hook(server)).path
    address = urlsplit(server.url)

    def connect() -> socket.socket:
        return socket.create_connection((address.hostname, address.port), timeout=60)

    # Headers past the limit: 431, closed; the request pipelined after it is not taken.
    huge = post(path, 1, b"X-Pad: %s\r\n" % (b"a" * (MAX_HEAD + 1)))
    with connect() as sock:
        sock.sendall(huge + post(path, 2))
        answer = closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 ") and answer.count(b"HTTP/1.1") == 1
    # A body past the webhook's limit: 413 and closed; nor is the request after it taken
    # (its client sends it again on a new connection: taken, it would be stored twice).
    big = b'{"n":3,"pad":"%s"}' % (b"b" * 2_000_000)
    over = (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), len(big), big))
    with connect() as sock:
        sock.sendall(over + post(path, 4))
        answer = closed(sock)
    assert answer.startswith(b"HTTP/1.1 413 ") and answer.count(b"HTTP/1.1") == 1
    # HTTP/1.0 closes after its answer: the one pipelined after it is not taken either.
    with connect() as sock:
        sock.sendall(post(path, 5, version=b"1.0") + post(path, 6))
        answer = closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1") == 1
    # A head sent a byte now and then is closed once HEAD_SECONDS pass (and sweeps run).
    with connect() as sock:
        sock.sendall(post(path, 7)[:40])
        began = time.monotonic()
        assert closed(sock) == b""
        assert time.monotonic() - began >= HEAD_SECONDS - 1
    assert stored(server) == [0, 5]
    assert server.stop() == 0
    assert not any("Traceback" in line for line in server.output), "".join(server.output)
