"""`patterns serve --acceptors N`: webhook requests taken by acceptor processes on the same
port, each journaling to its own segment. Acknowledged records land exactly once whoever is
killed when (an acceptor after its fsync and before the store commit, the server in the
middle of a stream of requests); a webhook removed by a reload is refused at once; everything
else still reaches the server through them."""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.server.conftest import Server, write_app

GRAPH = """
title: Intake
functions:
  - webhook: events
    id: events01
stores:
  - table: events
"""

ACCEPTORS = ("--acceptors", "2")


def hook(server: Server) -> str:
    (found,) = server.get("/apps/intake/webhooks")
    return f"{server.url}{found['path']}"


def acceptors(server: Server) -> set[int]:
    """The pids of the server's acceptor processes (its children running one)."""
    assert server.proc is not None
    found: set[int] = set()
    for task in Path(f"/proc/{server.proc.pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in map(int, children):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"patterns.server.acceptor" in cmd:
                found.add(pid)
    return found


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def segment_bytes(root: Path) -> int:
    """Bytes of records in the acceptors' journal segments (headers and the zero-filled
    reserve left out: a record ends in its JSON's last byte, never a zero)."""
    return sum(max(0, len(p.read_bytes().rstrip(b"\0")) - 16)
               for p in (root / ".patterns").glob("intake-a*.journal"))


def post(url: str, n: int) -> int:
    return requests.post(url, json={"n": n, "tag": f"t{n}"}, timeout=60).status_code


def post_many(url: str, numbers: range) -> list[int]:
    """Each number posted on its own connection (spread over the acceptors); all acked."""
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda n: post(url, n), numbers))
    assert statuses == [200] * len(numbers), statuses
    return list(numbers)


def posting(url: str, stop: threading.Event,
            clients: int = 6) -> tuple[list[int], list[threading.Thread]]:
    """``clients`` threads (started) posting ``{"n": ...}`` records to ``url`` on keep-alive
    connections until ``stop``: the numbers acked (2xx), and the threads. A client whose
    connection fails (its acceptor or the server killed) goes on, as one would, on a new
    connection; that request and a refused one (503) are not acked."""
    acked: list[int] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        n = k * 1_000_000
        while not stop.is_set():
            with requests.Session() as http:  # (one connection stays on one acceptor)
                while not stop.is_set():
                    n += 1
                    try:
                        status = http.post(url, json={"n": n}, timeout=30).status_code
                    except requests.RequestException:
                        break
                    if status == 200:
                        with lock:
                            acked.append(n)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(1, clients + 1)]
    for thread in threads:
        thread.start()
    return acked, threads


def stored(server: Server) -> list[int]:
    return sorted(r["n"] for r in server.rows("intake", "events"))


def started_with_table(serve: Any, tmp_path: Path, env: dict[str, str] | None = None,
                       args: tuple[str, ...] = ()) -> tuple[Server, Path]:
    """A server with acceptors whose table exists (an acceptor journals only records that
    fit a table it knows; the first request creates it through the server)."""
    root = write_app(tmp_path / "intake", GRAPH, {})
    first = serve(root, args=ACCEPTORS)
    assert post(hook(first), 0) == 200
    assert stored(first) == [0]
    assert first.stop() == 0
    return serve(root, args=(*ACCEPTORS, *args), env=env), root


@pytest.mark.slow
def test_records_acked_by_an_acceptor_killed_after_its_fsync_land_once(
        tmp_path: Path, serve: Any) -> None:
    server, root = started_with_table(serve, tmp_path, {"PATTERNS_INTAKE_PAUSE": "commit"})
    url = hook(server)
    before = acceptors(server)
    assert len(before) == 2
    acked = [0, *post_many(url, range(1, 41))]
    assert segment_bytes(root) > 0  # the acceptors journaled them (nothing committed yet)
    server.wait_for(lambda: any("paused before committing" in line for line in server.output),
                    60, "the committer to hold")
    victim = min(before)
    os.kill(victim, signal.SIGKILL)  # after its fsync and its 2xx, before any store commit
    server.wait_for(lambda: len(acceptors(server) - before) == 1, 60, "a new acceptor")
    acked += post_many(url, range(41, 61))
    server.kill()  # the server too, still before any commit: the acceptors die with it
    for pid in acceptors(server) | before:
        server.wait_for(lambda pid=pid: not alive(pid), 30, f"acceptor {pid} to end")
    server.env.pop("PATTERNS_INTAKE_PAUSE")
    server.start()
    assert stored(server) == sorted(acked)


@pytest.mark.slow
def test_records_acked_while_the_server_is_killed_mid_stream_land_once(
        tmp_path: Path, serve: Any) -> None:
    server, root = started_with_table(serve, tmp_path)
    url = hook(server)
    stop = threading.Event()
    acked, threads = posting(url, stop)
    server.wait_for(lambda: len(acked) > 300, 60, "requests acked")
    os.kill(min(acceptors(server)), signal.SIGKILL)  # one acceptor first, mid-stream
    server.wait_for(lambda: len(acked) > 600, 60, "requests acked after that")
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert segment_bytes(root) > 0
    server.start()
    rows = stored(server)
    assert len(rows) == len(set(rows))  # nothing twice
    assert set(acked) <= set(rows)  # every acked record (others at most once)
    assert 0 in rows


@pytest.mark.slow
def test_a_webhook_removed_by_a_reload_is_refused_by_every_acceptor_at_once(
        tmp_path: Path, serve: Any) -> None:
    server, root = started_with_table(serve, tmp_path, args=("--reload",))
    url = hook(server)
    post_many(url, range(1, 20))
    assert segment_bytes(root) > 0  # (the acceptors took them)
    (root / "graph.yml").write_text(GRAPH.replace(
        "  - webhook: events\n    id: events01\n", "  - node_file: other.py\n"))
    (root / "other.py").write_text("pass\n")
    server.wait_for(lambda: not server.get("/apps/intake/webhooks"), 60, "the reload")
    with ThreadPoolExecutor(8) as pool:  # (new connections: every acceptor answers some)
        answers = list(pool.map(lambda n: requests.post(url, json={"n": n}, timeout=30),
                                range(40)))
    assert [a.status_code for a in answers] == [404] * 40, ([a.text for a in answers], server.output)
    assert "no webhook here" in answers[0].json()["error"]
    assert stored(server) == list(range(20))  # (what was acked before stays)


@pytest.mark.slow
def test_the_server_answers_as_before_through_its_acceptors(tmp_path: Path,
                                                            serve: Any) -> None:
    server, _ = started_with_table(serve, tmp_path)
    url = hook(server)
    for n in range(1, 21):  # read after write: each 2xx is visible to the next read
        assert post(url, n) == 200
        assert stored(server)[-1] == n
    # what an acceptor does not take itself, the server answers, with its messages
    wrong = requests.post(url, json={"n": "not a number"}, timeout=30)
    assert wrong.status_code == 400 and "nothing was written" in wrong.json()["error"]
    big = requests.post(url, data=b"[" + b"1," * 600_000 + b"1]", timeout=30)
    assert big.status_code == 413 and "max_body_bytes" in big.json()["error"]
    bad = requests.post(url, data=b"{nope", timeout=30)
    assert bad.status_code == 400
    host = requests.post(url, json={"n": 1}, headers={"Host": "evil.example"}, timeout=30)
    assert host.status_code == 403 and "Host" in host.json()["error"]
    assert requests.get(server.api("/apps/intake/webhooks"), timeout=30).status_code == 401
    assert requests.post(f"{server.url}/webhooks/intake/nope", json={}, timeout=30
                         ).status_code == 404
    new = requests.post(url, json={"n": 99, "extra": "a new column"}, timeout=30)
    assert new.status_code == 200  # (a new column: checked and journaled by the server)
    assert stored(server) == [*range(21), 99]
    assert server.stop() == 0
    assert not any("Traceback" in line for line in server.output), "".join(server.output)


@pytest.mark.slow
def test_records_acked_after_a_start_with_no_segments_are_committed_without_a_read(
        tmp_path: Path, serve: Any) -> None:
    # An app served with acceptors for the first time (its table made before): their first
    # segments are noted by no message to the server, and its committer used to wait for
    # one with no timeout, so acked records stayed uncommitted until an API read. A node reading
    # the table shows the commit in the server's log (an API request would commit them).
    graph = GRAPH.replace("stores:", """  - node_file: reader.py
    id: reader01
stores:
  - table: seen""")
    root = write_app(tmp_path / "intake", graph, {"reader.py": """
        from patterns import Table
        Table("seen", "w").append([{"n": r["n"]} for r in
                                   Table("events").as_stream().consume_records()])
    """})
    first = serve(root)  # (no acceptors yet: the app is served with them the first time next)
    assert post(hook(first), 0) == 200
    first.wait_for(lambda: written(first) == 1, 60, "the reader's run on record 0")
    assert first.stop() == 0
    assert not list((root / ".patterns").glob("intake-a*.journal"))
    server = serve(root, args=ACCEPTORS)
    post_many(hook(server), range(1, 6))  # (the API read for the hook's URL comes first)
    server.wait_for(lambda: written(server) == 5, 60, "the reader's runs on the acked records")
    assert sorted(r["n"] for r in server.rows("intake", "seen")) == [0, 1, 2, 3, 4, 5]


def written(server: Server) -> int:
    """Rows the reader's runs wrote, by the server's log."""
    import re

    return sum(int(m.group(1)) for line in server.output
               if (m := re.search(r"reader succeeded .*?: (\d+) row\(s\) written", line)))
