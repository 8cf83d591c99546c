"""An acceptor's fsync helpers (patterns/server/acceptor_sync.py): processes forked by each
acceptor that fsync its journal segments. They hold nothing of the acceptor's (no journal,
no segment lock, no channel to the server: a killed acceptor is seen and replaced at once),
die with it, and a helper killed mid-stream loses no acknowledged record: the acceptor
refuses what its sync covered, stops, and the server starts another."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.server.test_acceptors import (
    acceptors,
    alive,
    hook,
    post_many,
    posting,
    started_with_table,
    stored,
)


def helpers(acceptor: int) -> set[int]:
    """The pids of an acceptor's fsync helpers (its children)."""
    found: set[int] = set()
    for task in Path(f"/proc/{acceptor}/task").glob("*"):
        try:
            found |= {int(pid) for pid in (task / "children").read_text().split()}
        except OSError:
            continue
    return {pid for pid in found if alive(pid)}


def open_files(pid: int) -> list[str]:
    """What a process's descriptors 3 and up point to."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        if int(fd.name) > 2:
            try:
                found.append(os.readlink(fd))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_an_acceptors_helpers_hold_only_their_socket_and_die_with_it(
        tmp_path: Path, serve: Any) -> None:
    server, _ = started_with_table(serve, tmp_path)
    url = hook(server)
    acked = [0, *post_many(url, range(1, 21))]
    victim = min(acceptors(server))
    theirs = helpers(victim)
    assert len(theirs) == 4
    for pid in theirs:  # (a journal or the lock held here would outlive the acceptor)
        files = open_files(pid)
        assert len(files) == 1 and files[0].startswith("socket:"), files
    before = acceptors(server)
    os.kill(victim, signal.SIGKILL)
    for pid in theirs:
        server.wait_for(lambda pid=pid: not alive(pid), 30, f"helper {pid} to end")
    server.wait_for(lambda: len(acceptors(server) - before) == 1, 60, "a new acceptor")
    acked += post_many(url, range(21, 41))
    assert stored(server) == sorted(acked)


@pytest.mark.slow
def test_a_helper_killed_mid_stream_loses_no_acked_record(tmp_path: Path,
                                                          serve: Any) -> None:
    server, _ = started_with_table(serve, tmp_path)
    url = hook(server)
    stop = threading.Event()
    acked, threads = posting(url, stop)
    server.wait_for(lambda: len(acked) > 200, 60, "requests acked")
    victim = min(acceptors(server))
    before = acceptors(server)
    os.kill(min(helpers(victim)), signal.SIGKILL)
    server.wait_for(lambda: not alive(victim), 60, "the acceptor to stop")
    server.wait_for(lambda: len(acceptors(server) - before) == 1, 60, "a new acceptor")
    count = len(acked)
    server.wait_for(lambda: len(acked) > count + 200, 60, "requests acked after that")
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    rows = stored(server)
    assert len(rows) == len(set(rows))  # nothing twice
    assert set(acked) <= set(rows)  # every acked record (a refused one at most once)
    assert any("an fsync helper ended" in line for line in server.output), server.output
    assert not any("Traceback" in line for line in server.output), "".join(server.output)
