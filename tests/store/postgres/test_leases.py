"""Leases: one holder at a time, expiry, renewal, and fencing tokens that find a late one."""

from __future__ import annotations

import time

from patterns.store.postgres import PostgresStore


def test_one_holder_until_expiry_then_a_greater_token(pg_store: PostgresStore) -> None:
    with pg_store.transaction() as tx:
        mine = tx.leases.acquire("node:load", "engine-a", 0.5)
        assert mine is not None and mine.token == 1
        assert tx.leases.acquire("node:load", "engine-b", 30) is None  # held
        again = tx.leases.acquire("node:load", "engine-a", 0.5)  # its holder renews
        assert again is not None and again.token == 1
    deadline = time.monotonic() + 10
    stolen = None
    while stolen is None and time.monotonic() < deadline:  # after expiry: taken over
        with pg_store.transaction() as tx:
            stolen = tx.leases.acquire("node:load", "engine-b", 30)
        time.sleep(0.05)
    assert stolen is not None and stolen.holder == "engine-b" and stolen.token == 2
    with pg_store.transaction() as tx:  # the late holder is fenced off
        assert not tx.leases.holds(again)
        assert tx.leases.renew(again, 30) is None
        assert not tx.leases.release(again)
        assert tx.leases.holds(stolen)


def test_renew_and_release(pg_store: PostgresStore) -> None:
    with pg_store.transaction() as tx:
        lease = tx.leases.acquire("scheduler", "a", 30)
        assert lease is not None
        renewed = tx.leases.renew(lease, 60)
        assert renewed is not None and renewed.expires_at > lease.expires_at
        assert tx.leases.release(renewed)
        assert not tx.leases.holds(renewed)
        taken = tx.leases.acquire("scheduler", "b", 30)  # free at once after release
        assert taken is not None and taken.token == 2
        got = tx.leases.get("scheduler")
        assert got is not None and got.holder == "b"
