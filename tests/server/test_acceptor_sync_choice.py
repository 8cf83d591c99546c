"""Where an acceptor fsyncs a group (acceptor.py, ``_write_group``): on its loop when no write
made a file longer, in its helper processes when one did. A failed fsync on the loop refuses
every request of the group (nothing acked) and cuts the journal back; a later group is acked.
The loop's fsync is made to fail by an EIO injected in this process only: the helpers are
processes of their own, so which requests fail shows where their group was fsync'd."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from patterns.server.acceptor import Acceptor, AppIntake
from patterns.server.acceptor_sync import SyncHelpers
from patterns.server.journal import encode


def outcomes(acceptor: Acceptor, app: AppIntake, count: int, first: int = 0
             ) -> list[asyncio.Future[Any]]:
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[Any]] = []
    for i in range(count):
        future: asyncio.Future[Any] = loop.create_future()
        acceptor.submit(app, encode("hook", "events", [{"n": first + i}]),
                        lambda error, f=future: f.done() or f.set_result(error))
        futures.append(future)
    return futures


async def settled(futures: list[asyncio.Future[Any]]) -> list[str | None]:
    done = await asyncio.wait_for(asyncio.gather(*futures), timeout=10)
    return [None if error is None else type(error).__name__ for error in done]


def test_a_group_into_the_zeros_is_fsyncd_on_the_loop_and_a_failed_fsync_acks_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fdatasync
    failing = {"on": False}

    def fdatasync(fd: int) -> None:  # (this process only: not the helpers')
        if failing["on"]:
            raise OSError(errno.EIO, "injected")
        real(fd)

    async def scenario() -> None:
        control, _other = socket.socketpair()
        helpers = SyncHelpers(2)
        helpers.start()
        acceptor = Acceptor("a1", control, "", helpers=helpers)
        reserved = AppIntake("reserved", tmp_path / "r", "a1", 0)
        plain = AppIntake("plain", tmp_path / "p", "a1", 0, zero_fill=False)
        monkeypatch.setattr(os, "fdatasync", fdatasync)
        failing["on"] = True
        # Into the zeros: on the loop, where the fsync fails: every request refused.
        assert await settled(outcomes(acceptor, reserved, 3)) == ["Unavailable"] * 3
        assert reserved.durable == 0 and reserved.journal.end == 0  # (cut back)
        # A file that grows: in a helper, whose fsync works.
        assert await settled(outcomes(acceptor, plain, 3)) == [None] * 3
        assert plain.durable == plain.journal.end > 0
        # One group with both: one grew, so the group goes to a helper, both acked.
        both = outcomes(acceptor, reserved, 2, 10) + outcomes(acceptor, plain, 2, 10)
        assert await settled(both) == [None] * 4
        assert reserved.durable == reserved.journal.end > 0
        failing["on"] = False
        # The loop's fsync working again: acked.
        assert await settled(outcomes(acceptor, reserved, 2, 20)) == [None] * 2
        assert reserved.durable == reserved.journal.end
        for sock in helpers.socks:
            sock.close()
        control.close()
        _other.close()

    asyncio.run(scenario())
