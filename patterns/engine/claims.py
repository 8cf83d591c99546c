"""Which engine runs which node, when several engines share one store (PostgreSQL).

Each engine has an identity (``engine_id``) and a heartbeat lease ``engine:<id>`` in the
store. To run a node it takes the node's lease ``node:<id>`` (in the transaction that marks
the node's queue item started, for the scheduler), so no two engines run a node at once.
Every checkpoint of the run is **fenced**: in its commit transaction the lease must still
be this engine's, with the fencing token it was taken with, or the commit is refused and
rolled back (:class:`ClaimLost`). A heartbeat thread renews the engine's leases every third
of their length; an engine killed (or cut off from the store) stops renewing, its leases
expire, and another engine then ends its runs as lost and runs them again
(:func:`recover_lost_runs`), exactly where their last checkpoints left them.

A store one process holds (DuckDB: ``capabilities.concurrent_processes`` false) grants every
lease and has none live, so this is its single-process behaviour unchanged.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable

from patterns.errors import StoreError
from patterns.store.interface import Lease, QueueItem, Store, Transaction
from patterns.store.repositories import new_id

log = logging.getLogger("patterns.claims")

#: How long an engine's leases last without a heartbeat (``PATTERNS_LEASE_SECONDS``): how
#: long after an engine dies the others take its runs over.
DEFAULT_LEASE_SECONDS = 30.0
NODE = "node:"
ENGINE = "engine:"
_NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)


class ClaimLost(StoreError):
    """A checkpoint of a node whose lease this engine no longer holds (refused)."""


def lease_seconds() -> float:
    raw = os.environ.get("PATTERNS_LEASE_SECONDS")
    try:
        seconds = float(raw) if raw else DEFAULT_LEASE_SECONDS
    except ValueError:
        raise StoreError(f"PATTERNS_LEASE_SECONDS={raw!r} is not a number of seconds; "
                         f"give one like 30") from None
    if seconds < 1:
        raise StoreError(f"PATTERNS_LEASE_SECONDS={raw!r} is too short; give at least 1")
    return seconds


class Claims:
    """This engine's identity and the node leases it holds, renewed by a heartbeat."""

    def __init__(self, store: Store, seconds: float | None = None) -> None:
        self.store = store
        self.engine_id = new_id()
        self.seconds = seconds or lease_seconds()
        self.shared = store.capabilities.concurrent_processes
        #: Called with a node's id when its lease was lost (the engine stops its run).
        self.on_lost: Callable[[str], None] | None = None
        self._held: dict[str, Lease] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.shared and not store.read_only:
            with store.autocommit() as tx:
                self._engine = tx.leases.acquire(ENGINE + self.engine_id, self.engine_id,
                                                 self.seconds)
            self._thread = threading.Thread(target=self._beat, name="patterns-heartbeat",
                                            daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ node leases
    def take(self, tx: Transaction, node_id: str) -> Lease | None:
        """The node's lease, taken in ``tx`` (None: another engine runs the node). It
        counts as held once ``tx`` has committed: call :meth:`hold` then."""
        return tx.leases.acquire(NODE + node_id, self.engine_id, self.seconds)

    def hold(self, node_id: str, lease: Lease) -> None:
        with self._lock:
            self._held[node_id] = lease

    def claim(self, node_id: str) -> Lease | None:
        """The node's lease, taken in a transaction of its own (a store of one process
        grants it without one: no cost per run)."""
        if not self.shared:
            sole = Lease(NODE + node_id, self.engine_id, 1, _NEVER)
            self.hold(node_id, sole)
            return sole
        with self.store.transaction() as tx:
            lease = self.take(tx, node_id)
        if lease is not None:
            self.hold(node_id, lease)
        return lease

    def drop(self, node_id: str) -> None:
        """Give the node's lease up (its run has ended)."""
        with self._lock:
            lease = self._held.pop(node_id, None)
        if lease is not None and self.shared:
            try:
                with self.store.autocommit() as tx:
                    tx.leases.release(lease)
            except Exception as exc:  # it expires by itself
                log.warning("could not release the lease of node %s: %s", node_id, exc)

    def holds(self, tx: Transaction, node_id: str) -> bool:
        """Whether this engine still holds the node's lease (locked until ``tx`` ends)."""
        with self._lock:
            lease = self._held.get(node_id)
        return lease is None or tx.leases.holds(lease)

    def fence(self, node_id: str) -> Callable[[Transaction], None] | None:
        """The check each checkpoint of the node's run makes in its commit transaction
        (None: a store of one process has nothing to fence)."""
        with self._lock:
            lease = self._held.get(node_id)
        if not self.shared:
            return None

        def check(tx: Transaction) -> None:
            if lease is not None and not tx.leases.holds(lease):
                raise ClaimLost(
                    f"node {node_id}: this engine's lease on the node expired (the engine "
                    f"was paused or cut off from the store for more than {self.seconds:g} s) "
                    f"and another engine took the node over; the checkpoint was refused and "
                    f"rolled back, and the other engine runs the node again")
        return check

    # ------------------------------------------------------------------ heartbeat
    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self._renew()
            except Exception as exc:  # the store is away: try again at the next beat
                log.warning("could not renew this engine's leases: %s", exc)

    def _renew(self) -> None:
        with self._lock:
            held = dict(self._held)
        lost: list[str] = []
        with self.store.autocommit() as tx:
            self._engine = tx.leases.acquire(ENGINE + self.engine_id, self.engine_id,
                                             self.seconds) or self._engine
            for node_id, lease in held.items():
                if tx.leases.renew(lease, self.seconds) is None:
                    lost.append(node_id)
        for node_id in lost:
            with self._lock:
                if self._held.get(node_id) == held[node_id]:
                    del self._held[node_id]
            log.warning("this engine lost its lease on node %s", node_id)
            if self.on_lost is not None:
                self.on_lost(node_id)

    def close(self) -> None:
        """Stop the heartbeat and give every lease up (another engine may go on at once)."""
        self._stop.set()
        if self._thread is None:
            return
        self._thread.join()
        for node_id in list(self._held):
            self.drop(node_id)
        try:
            with self.store.autocommit() as tx:
                tx.leases.release(Lease(ENGINE + self.engine_id, self.engine_id,
                                        self._engine.token if self._engine else 0,
                                        dt.datetime.now(dt.UTC)))
        except Exception as exc:  # it expires by itself
            log.warning("could not release this engine's lease: %s", exc)


def live_nodes(tx: Transaction) -> set[str]:
    """The nodes some live engine holds the lease of (is running)."""
    return {lease.name.removeprefix(NODE) for lease in tx.leases.live(NODE)}


def recover_lost_runs(tx: Transaction, error: str, at: dt.datetime) -> list[QueueItem]:
    """Runs left ``running`` by engines that died (no live lease on their node) end as
    failed with ``error``; their queue items wait again (returned as they were)."""
    live = live_nodes(tx)
    tx.runs.fail_running(error, at, except_nodes=live)
    lost = [item for item in tx.queue.items(started=True) if item.node_id not in live]
    for item in lost:
        tx.queue.release(item.id)
    return lost
