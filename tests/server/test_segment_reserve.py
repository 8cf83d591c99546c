"""An acceptor's journal segment kept zero-filled ahead of its records (so its fsyncs write
no new file size; patterns/server/journal.py): what a kill -9 leaves in it is replayed
exactly as from a segment that grows — every acknowledged record once, a torn record in
the zeros cut — and the segment is zero-filled again for the acceptors that follow."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from patterns.server.acceptor import SEGMENT_RESERVE
from patterns.server.journal import encode
from tests.server.test_acceptors import (
    acceptors,
    alive,
    hook,
    post_many,
    started_with_table,
    stored,
)


def segments(root: Path) -> list[Path]:
    return sorted((root / ".patterns").glob("intake-a*.journal"))


def records_end(path: Path) -> int:
    """The byte just past a segment's last record (a record never ends in a zero byte)."""
    return len(path.read_bytes().rstrip(b"\0"))


def killed_after_acks(serve: Any, tmp_path: Path, count: int,
                      before_kill: Any = None) -> tuple[Any, Path, list[int]]:
    """A server whose acceptors acked ``count`` requests and committed none of them, then
    killed -9 with them: the server, its app's folder and the acked ``n``s."""
    server, root = started_with_table(serve, tmp_path, {"PATTERNS_INTAKE_PAUSE": "commit"})
    acked = [0, *post_many(hook(server), range(1, count + 1))]
    if before_kill is not None:
        before_kill(server, root)
    before = acceptors(server)
    server.kill()  # after the fsyncs and the 2xx, before any store commit
    for pid in before:
        server.wait_for(lambda pid=pid: not alive(pid), 30, f"acceptor {pid} to end")
    server.env.pop("PATTERNS_INTAKE_PAUSE")
    return server, root, acked


@pytest.mark.slow
def test_a_kill_before_the_commit_lands_every_acked_record_of_a_zero_filled_segment_once(
        tmp_path: Path, serve: Any) -> None:
    def zero_filled(server: Any, root: Path) -> None:
        server.wait_for(lambda: any("paused before committing" in line
                                    for line in server.output), 60, "the committer to hold")
        files = segments(root)
        assert len(files) == 2
        assert all(p.stat().st_size == SEGMENT_RESERVE for p in files)  # records over zeros
        assert sum(records_end(p) - 16 for p in files) > 0

    server, root, acked = killed_after_acks(serve, tmp_path, 40, zero_filled)
    files = segments(root)
    # a request the acceptor was writing when it died: cut short in the zeros, never acked
    victim = max(files, key=records_end)
    torn = encode("events01", "events", [{"n": 999, "tag": "torn"}])
    whole = records_end(victim)
    with open(victim, "r+b") as f:
        f.seek(whole)
        f.write(torn[:-5])
    server.start()
    assert stored(server) == sorted(acked)  # every acked record once, the torn one not
    server.wait_for(lambda: all(p.stat().st_size == SEGMENT_RESERVE for p in segments(root)),
                    60, "the segments zero-filled again")
    assert set(victim.read_bytes()[whole:]) == {0}  # the torn bytes are gone
    acked += post_many(hook(server), range(41, 61))
    assert stored(server) == sorted(acked)


@pytest.mark.slow
def test_an_acceptor_killed_mid_rotation_leaves_a_spare_that_is_never_read(
        tmp_path: Path, serve: Any) -> None:
    # A spare left written (a crash between the rotation's write into it and its rename)
    # holds records the segment holds too: it is remade, never replayed.
    server, root, acked = killed_after_acks(serve, tmp_path, 20)
    for path in segments(root):
        spare = path.with_name(path.name + ".spare")
        spare.write_bytes(path.read_bytes())  # as if the rotation kept everything
    server.start()
    assert stored(server) == sorted(acked)
    acked += post_many(hook(server), range(21, 31))
    assert stored(server) == sorted(acked)
    before = acceptors(server)
    os.kill(min(before), signal.SIGKILL)
    server.wait_for(lambda: len(acceptors(server) - before) == 1, 60, "a new acceptor")
    acked += post_many(hook(server), range(31, 41))
    assert stored(server) == sorted(acked)
