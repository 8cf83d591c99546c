"""Webhook requests served ahead of the API's stack (patterns/server/ingest.py, WebhookFront)
against a real server on loopback: a client that goes away mid-body stores nothing and the
server goes on; keep-alive connections carry many requests, each answered once and stored
once; answers have the API's shape; the API app alone still serves its webhook route."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tests.server.conftest import write_app

GRAPH = """
title: Front
slug: front
functions:
  - webhook: events
    id: hook0001
stores:
  - table: events
"""


def _raw(url: str, request: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(request)
    return sock


def _read_answer(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, Any]]:
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":")[1]) for line in lines
                  if line.lower().startswith("content-length:"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        rest += chunk
    buffer[:] = rest[length:]
    return int(lines[0].split()[1]), json.loads(rest[:length])


def test_a_client_gone_mid_body_stores_nothing_and_the_server_goes_on(tmp_path: Path,
                                                                      serve: Any) -> None:
    server = serve(write_app(tmp_path / "front", GRAPH, {}))
    (hook,) = server.get("/apps/front/webhooks")
    sock = _raw(server.url, (f"POST {hook['path']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             f"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                             f'{{"n": 1, "pad": "').encode())
    sock.close()
    answer = requests.post(server.url + hook["path"], json={"n": 2}, timeout=30)
    assert answer.status_code == 200 and answer.json() == {"ok": True, "records": 1}
    assert answer.headers["content-type"] == "application/json"
    assert [r["n"] for r in server.rows("front", "events")] == [2]


def test_keep_alive_requests_are_each_answered_and_stored_once(tmp_path: Path,
                                                               serve: Any) -> None:
    server = serve(write_app(tmp_path / "front", GRAPH, {}))
    (hook,) = server.get("/apps/front/webhooks")
    bodies = [json.dumps({"n": i}).encode() if i % 5 else b'{"n": NaN}' for i in range(40)]
    # All sent before any answer is read (pipelined): answers come back in order.
    sock = _raw(server.url, b"".join(
        f"POST {hook['path']} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
        f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body for body in bodies))
    buffer = bytearray()
    answers = [_read_answer(sock, buffer) for _ in bodies]
    sock.close()
    for i, (status, doc) in enumerate(answers):
        if i % 5:
            assert (status, doc) == (200, {"ok": True, "records": 1}), i
        else:
            assert status == 400 and "NaN is not JSON" in doc["error"], doc
    stored = sorted(r["n"] for r in server.rows("front", "events"))
    assert stored == [i for i in range(40) if i % 5]


def test_the_api_app_alone_still_serves_its_documented_webhook_route(tmp_path: Path,
                                                                    monkeypatch: Any) -> None:
    """(``create_app`` without the front ``patterns serve`` puts around it: the route in the
    OpenAPI document serves the request the same way.)"""
    import uvicorn

    from patterns.server.api import create_app
    from patterns.server.hub import AppService, Hub
    from patterns.server.security import Access

    monkeypatch.setenv("PATTERNS_HOME", str(tmp_path / "home"))
    hub = Hub()
    hub.add(AppService(write_app(tmp_path / "front", GRAPH, {})))
    hub.start()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(hub, Access.build("t0ken", "127.0.0.1")),
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        (hook,) = requests.get(f"{url}/api/v1/apps/front/webhooks", timeout=30,
                               headers={"Authorization": "Bearer t0ken"}).json()
        answer = requests.post(url + hook["path"], json=[{"n": 1}, {"n": 2}], timeout=30)
        assert answer.status_code == 200 and answer.json() == {"ok": True, "records": 2}
        bad = requests.post(url + hook["path"], data=b'{"n": NaN}', timeout=30)
        assert bad.status_code == 400 and "NaN is not JSON" in bad.json()["error"]
        rows = requests.get(f"{url}/api/v1/apps/front/tables/events/rows", timeout=30,
                            headers={"Authorization": "Bearer t0ken"}).json()["rows"]
        assert sorted(r["n"] for r in rows) == [1, 2]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        hub.stop(0)
