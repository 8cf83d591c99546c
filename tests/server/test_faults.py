"""Faults the server must ride out: a full disk under the store, a client that never sends
its body."""

from __future__ import annotations

import resource
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.server.conftest import write_app
from tests.server.test_server import COUNT, GRAPH, SLOW

ROOMY = GRAPH.replace("max_body_bytes: 2000", "max_body_bytes: 1000000")


@pytest.mark.slow
def test_a_full_disk_fails_writes_cleanly_and_the_server_keeps_answering(
        tmp_path: Path, serve: Any, monkeypatch: Any) -> None:
    root = write_app(tmp_path / "hooks", ROOMY, {"count.py": COUNT, "slow.py": SLOW})
    server = serve(root)
    server.stop()
    # Restart with the store's disk "full": no file of the server may grow past this size.
    limit = (root / ".patterns" / "store.duckdb").stat().st_size + 3_000_000
    real_popen = subprocess.Popen

    def limited(*args: Any, **kwargs: Any) -> Any:
        kwargs["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_FSIZE,
                                                          (limit, limit))
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", limited)
    server.start()
    monkeypatch.setattr(subprocess, "Popen", real_popen)
    (hook,) = server.get("/apps/hooks/webhooks")
    url = server.url + hook["path"]
    acked, refused = [], []
    for n in range(200):
        response = requests.post(url, json={"n": n, "pad": "x" * 90_000}, timeout=60)
        if response.status_code == 200:
            acked.append(n)
        else:
            assert response.status_code == 503, response.text
            assert "nothing was written" in response.json()["error"]
            refused.append(n)
            if len(refused) >= 3:
                break
    assert acked and refused, "the disk never filled up; the test proves nothing"
    # The server still answers; the table holds the acknowledged records but the last few,
    # which wait in the intake journal for a store that can take them (a request is
    # acknowledged once the journal holds it; from the first failed commit on, requests are
    # refused), and none of the refused ones.
    assert server.http.get(server.api("/apps"), timeout=30).status_code == 200
    stored = [r["n"] for r in server.rows("hooks", "events")]
    assert stored == acked[:len(stored)] and not set(stored) & set(refused)
    # With room again (a restart without the limit), nothing was lost and writes work.
    server.stop()
    server.start()
    assert [r["n"] for r in server.rows("hooks", "events")] == acked
    url = server.url + hook["path"]  # (a new port)
    assert requests.post(url, json={"n": -1}, timeout=30).status_code == 200


def test_a_slow_client_does_not_hold_up_the_others(tmp_path: Path, serve: Any) -> None:
    root = write_app(tmp_path / "hooks", ROOMY, {"count.py": COUNT, "slow.py": SLOW})
    server = serve(root)
    (hook,) = server.get("/apps/hooks/webhooks")
    host, port = server.url.removeprefix("http://").split(":")
    slow = [socket.create_connection((host, int(port))) for _ in range(20)]
    try:
        for conn in slow:  # headers promise a body that never comes
            conn.sendall(f"POST {hook['path']} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                         f"Content-Type: application/json\r\n\r\n{{\"n\": ".encode())
        started = time.monotonic()
        for n in range(20):
            response = requests.post(server.url + hook["path"], json={"n": n}, timeout=30)
            assert response.status_code == 200
        assert time.monotonic() - started < 25
    finally:
        for conn in slow:
            conn.close()
    assert [r["n"] for r in server.rows("hooks", "events")] == list(range(20))
