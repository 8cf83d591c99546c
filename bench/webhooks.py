"""Benchmark 7: webhook ingest under load.

32 concurrent clients on loopback post one-record JSON bodies for 10 s (2 s with --small) to
a webhook of a real `patterns serve`; figures: requests/s, p50 and p99 latency, and a check
that every record whose request got a 2xx is in the table, once. A 2xx means the record is in
the fsync'd intake journal (durable: it survives kill -9 and is committed to the table
behind the answer, exactly once; docs/reliability.md). Baseline, in the same run: a
bare uvicorn endpoint that parses the JSON and answers 200 without storing anything.

The load comes from a separate process (asyncio, raw HTTP/1.1 keep-alive connections), the
same for both servers.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import PYTHON, Figure, percentile

CLIENTS = 32
#: `patterns serve --acceptors`: processes taking requests (BENCH_ACCEPTORS overrides).
ACCEPTORS = int(os.environ.get("BENCH_ACCEPTORS", "2"))

GRAPH = """
title: Ingest
slug: ingest
functions:
  - webhook: events
    id: events01
stores:
  - table: events
"""

BARE = """
import json, sys, uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    json.loads(body)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"11")]})
    await send({"type": "http.response.body", "body": b'{"ok":true}'})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False)
"""


# ---------------------------------------------------------------------- the load
async def _client(host: str, port: int, path: str, k: int, until: float,
                  latencies: list[float], acked: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    n = 0
    try:
        while time.perf_counter() < until:
            value = k * 10_000_000 + n
            n += 1
            body = json.dumps({"n": value, "source": "bench", "ok": True}).encode()
            request = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
                       f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if status_line.split()[1].startswith(b"2"):
                acked.append(value)
    finally:
        writer.close()


async def _load(url: str, seconds: float, clients: int) -> dict[str, Any]:
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    assert match, url
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    latencies: list[float] = []
    acked: list[int] = []
    until = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(_client(host, port, path, k, until, latencies, acked)
                           for k in range(clients)))
    elapsed = time.perf_counter() - started
    return {"requests": len(latencies), "seconds": elapsed, "acked": acked,
            "p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}


def load(url: str, seconds: float, clients: int = CLIENTS) -> dict[str, Any]:
    """Run the load from a separate process; its figures."""
    done = subprocess.run([PYTHON, "-m", "bench.webhooks", "load", url, str(seconds),
                           str(clients)], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# ---------------------------------------------------------------------- the servers
def _wait_for_line(proc: subprocess.Popen[str], pattern: str, timeout: float = 60) -> str:
    assert proc.stdout is not None
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the server ended before it was ready")
        found = re.search(pattern, line)
        if found:
            return found.group(1)
    raise RuntimeError("the server did not get ready in time")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _baseline(seconds: float) -> dict[str, Any]:
    port = _free_port()
    proc = subprocess.Popen([PYTHON, "-c", BARE, str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        import socket

        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        return load(f"http://127.0.0.1:{port}/hook", seconds)
    finally:
        proc.terminate()
        proc.wait()


def _patterns(seconds: float) -> tuple[dict[str, Any], list[int]]:
    import requests

    with tempfile.TemporaryDirectory(prefix="patterns-bench-") as tmp:
        root = Path(tmp) / "ingest"
        root.mkdir()
        (root / "graph.yml").write_text(GRAPH)
        env = {**os.environ, "PATTERNS_HOME": str(Path(tmp) / "home")}
        proc = subprocess.Popen([PYTHON, "-m", "patterns.cli.main", "serve", str(root),
                                 "--port", "0", "--acceptors", str(ACCEPTORS)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        try:
            url = _wait_for_line(proc, r"on (http://\S+)")
            api = requests.Session()  # the API needs the server's token (webhooks do not)
            token = (Path(tmp) / "home" / "server-token").read_text().strip()
            api.headers["Authorization"] = f"Bearer {token}"
            (hook,) = api.get(f"{url}/api/v1/apps/ingest/webhooks", timeout=30).json()
            result = load(f"{url}{hook['path']}", seconds)
            rows = api.get(f"{url}/api/v1/apps/ingest/tables/events/rows",
                           params={"limit": 1}, timeout=30).json()["total"]
            stored: list[int] = []
            offset = 0
            while offset < rows:
                page = api.get(f"{url}/api/v1/apps/ingest/tables/events/rows",
                               params={"limit": 10_000, "offset": offset},
                               timeout=60).json()["rows"]
                stored.extend(int(r["n"]) for r in page)
                offset += len(page)
            return result, stored
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def run(small: bool) -> list[Figure]:
    seconds = 2.0 if small else 10.0
    base = _baseline(seconds)
    ours, stored = _patterns(seconds)
    acked = ours["acked"]
    if sorted(stored) != sorted(acked):
        raise AssertionError(f"{len(set(acked) - set(stored))} acknowledged records missing, "
                             f"{len(stored) - len(set(stored))} stored twice")
    ours_rps = ours["requests"] / ours["seconds"]
    base_rps = base["requests"] / base["seconds"]
    note = (f"{CLIENTS} clients, {seconds:g} s, {ACCEPTORS} acceptor(s); every 2xx record "
            f"stored once ({len(acked)})")
    return [
        Figure("webhooks", "webhook ingest throughput", ours_rps, base_rps, "req/s", ">= 0.5",
               int(seconds), note),
        Figure("webhooks", "webhook latency p50", ours["p50"] * 1000, base["p50"] * 1000, "ms",
               "", int(seconds), "baseline: bare uvicorn p50 (reference)"),
        Figure("webhooks", "webhook latency p99", ours["p99"] * 1000, 20.0, "ms", "<= 1.0",
               int(seconds), "target: p99 <= 20 ms (the baseline column is the 20 ms bound)"),
    ]


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "load":
        figures = asyncio.run(_load(sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
        print(json.dumps(figures))
    else:
        for figure in run("--small" in sys.argv):
            print(figure.line())
