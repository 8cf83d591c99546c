"""The server's scheduler: what runs when, kept in the store so a restart loses nothing.

Everything waiting lives in the store (its ``queue`` and ``schedules`` repositories): the run queue (manual
triggers, new-row wake-ups, cron slots, delayed ``request_new_run``\\ s, retries) and each
cron trigger's next fire time. A queue item leaves the queue in the transaction that records
its run's end, and a cron slot moves on in the transaction that queues its run, so after a
crash (``kill -9`` included):

- runs that were waiting still run; runs that were running (rolled back, since nothing past
  their last checkpoint committed) run again;
- a cron slot never fires twice; slots missed while the server was down fire once;
- new rows whose readers were not yet queued wake them (a node is out of date when a table
  it reads got rows, from another node, after the start of its last run).

A node with a cron trigger runs on its schedule only (not when its inputs get rows). At most
one run of a node at a time; different nodes run in parallel up to ``workers``.
A node that has never run gets one first run when the app is first served (``trigger:
manual`` nodes run only when asked).

Several engines may serve one store (PostgreSQL): a queue item starts in the transaction
that also takes its node's lease (:mod:`patterns.engine.claims`), so an item starts once and
a node runs on one engine at a time; each engine notices the others' commits, and every third
of a lease ends the runs of engines whose leases expired and queues them again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from zoneinfo import ZoneInfo

from patterns.engine.claims import recover_lost_runs
from patterns.engine.engine import ENGINE_DIED, Engine, new_run_id
from patterns.engine.reactive import RUNNABLE_KINDS, default_workers, with_new_rows
from patterns.engine.run_start import record_unrecorded
from patterns.engine.session import RunSession
from patterns.engine.wake_index import WakeIndex
from patterns.graph.model import Node
from patterns.store.interface import Lease, QueueItem, Schedule, Transaction
from patterns.store.model import RunRecord

log = logging.getLogger("patterns.scheduler")

SHUTDOWN_REASON = ("the server stopped during the run; it was rolled back to its last "
                   "checkpoint and runs again when the server starts")


def next_fire(cron: str, timezone: str, after: dt.datetime) -> dt.datetime:
    """The first time strictly after ``after`` that ``cron`` fires, in ``timezone``; UTC."""
    from croniter import croniter

    local = after.astimezone(ZoneInfo(timezone))
    fire: dt.datetime = croniter(cron, local).get_next(dt.datetime)
    return fire.astimezone(dt.UTC)


class _Taken(Exception):
    """The queue item or its node is another engine's."""


def is_cron(trigger: str | None) -> bool:
    return bool(trigger) and trigger != "manual"


class Scheduler:
    def __init__(self, engine: Engine, *, workers: int | None = None) -> None:
        self.engine = engine
        self.workers = workers or default_workers()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="patterns-run")
        self._wake = threading.Condition()
        self._dirty = True  # something committed: look for out-of-date nodes
        self._queue_changed = True  # look at the queue (else only when something is due)
        self._next_due = 0.0
        self._schedule_cache: dict[str, Schedule] | None = None
        self._schedule_generation = 0  # moved by reload(); a read begun before it is not kept
        self._busy: dict[str, tuple[QueueItem, Future[Any]]] = {}  # node id -> running item
        #: Running nodes a run's end queued as readers (its run may have read those rows)
        self._woken_running: set[str] = set()
        self._stopping = False
        self._thread: threading.Thread | None = None
        #: (several engines on one store) the last commit seen, and when to look for
        #: runs of dead engines next
        self._seen_commit = 0
        self._next_sweep = 0.0
        #: what makes a node out of date, in memory (a store of one process: wake_index.py)
        self._wakes = None if engine.claims.shared else WakeIndex(engine.store)
        engine.on_run_commit = self._run_committed

    @property
    def app(self) -> Any:
        return self.engine.app

    # ------------------------------------------------------------------ life
    def start(self) -> None:
        self._recover()
        self._thread = threading.Thread(target=self._loop, name="patterns-scheduler",
                                        daemon=True)
        self._thread.start()

    def stop(self, drain_seconds: float = 30.0) -> None:
        """Stop starting runs; give running ones ``drain_seconds`` to finish, then stop them
        (rolled back, and queued again for the next start)."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join()
        deadline = time.monotonic() + drain_seconds
        for _, future in list(self._busy.values()):
            with contextlib.suppress(Exception):
                future.result(timeout=max(0.0, deadline - time.monotonic()))
        for run_id in self.engine.running_runs():
            self.engine.cancel(run_id, SHUTDOWN_REASON)
        self._pool.shutdown(wait=True)

    def notify(self, *, committed: bool = False) -> None:
        """Look again now: with ``committed``, rows were committed (readers may be out of
        date); without, the queue changed."""
        with self._wake:
            if committed:
                self._dirty = True
            else:
                self._queue_changed = True
            self._wake.notify_all()

    def _run_committed(self) -> None:
        """A run committed rows (a checkpoint; its last one also queued their readers):
        look now, rather than when the run's process has ended."""
        with self._wake:
            self._dirty = self._queue_changed = True
            self._wake.notify_all()

    # ------------------------------------------------------------------ asking for runs
    def trigger(self, node: Node, parameters: dict[str, Any] | None = None,
                trigger: str = "manual") -> QueueItem:
        with self.engine.store.transaction() as tx:
            item = tx.queue.enqueue(node.id, trigger, parameters=parameters)
        assert item is not None
        self.notify()
        return item

    def queued(self) -> list[QueueItem]:
        with self.engine.store.read() as view:
            return view.queue.items()

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                dirty, self._dirty = self._dirty, False
                look, self._queue_changed = self._queue_changed, False
            try:
                if self.engine.claims.shared:
                    others, recovered = self._watch_others()
                    dirty |= others
                    look |= recovered
                if dirty and self._wake_out_of_date():
                    look = True
                if self._fire_schedules():
                    look = True
                # The queue is read when it changed or something in it is due, not at every
                # commit (a webhook under load commits hundreds of times a second).
                if look or time.time() >= self._next_due:
                    self._next_due = self._start_due()
                soonest = min([self._next_due, time.time() + 1.0,
                               *(s.next_fire.timestamp() for s in self._schedules().values())])
            except Exception:
                log.exception("the scheduler failed a round; it tries again")
                self._next_due = soonest = time.time() + 1
            with self._wake:
                if self._stopping:
                    return
                if not (self._dirty or self._queue_changed):
                    self._wake.wait(timeout=max(0.01, soonest - time.time()))

    def _start_due(self) -> float:
        """Start every due item whose node is free, while workers are; the time the next
        waiting item is due."""
        now = time.time()
        soonest = now + 1.0
        with self.engine.store.read() as view:
            waiting = view.queue.items(started=False)
        for item in waiting:
            due = item.not_before.timestamp()
            if due > now:
                soonest = min(soonest, due)
                continue
            if item.node_id in self._busy or len(self._busy) >= self.workers:
                continue
            node = self._node(item.node_id)
            if node is None:  # gone from graph.yml since it was queued
                with self.engine.store.transaction() as tx:
                    tx.queue.remove(item.id)
                continue
            self._start(item, node)
        return soonest

    def _start(self, item: QueueItem, node: Node) -> None:
        run_id = new_run_id()
        try:
            with self.engine.store.transaction() as tx:
                lease = self._take(tx, item, node, run_id)
        except _Taken:
            return
        self._submit(item, node, run_id, lease)

    def _take(self, tx: Transaction, item: QueueItem, node: Node, run_id: str) -> Lease:
        """In ``tx``: the item marked started by ``run_id`` and the node's lease taken,
        together, or neither (:class:`_Taken`: another engine of the store took the item, or
        is running the node)."""
        if not tx.queue.mark_started(item.id, run_id):
            raise _Taken
        lease = self.engine.claims.take(tx, node.id)
        if lease is None:
            raise _Taken
        return lease

    def _submit(self, item: QueueItem, node: Node, run_id: str, lease: Lease) -> None:
        """Run the started ``item`` (its transaction has committed)."""
        self.engine.claims.hold(node.id, lease)

        def ended(tx: Transaction, record: RunRecord, session: RunSession | None) -> None:
            self._ended(tx, item, node, record, session)

        future = self._pool.submit(self.engine.run_node, node, item.trigger, item.parameters,
                                   item.attempt, run_id=run_id, on_end=ended, claimed=True)
        self._busy[node.id] = (item, future)
        future.add_done_callback(lambda done: self._done(node.id, done))

    def _done(self, node_id: str, future: Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.error("a run of node %s failed in the engine", node_id,
                      exc_info=future.exception())
            if self._wakes is not None:
                self._wakes.reread_runs()
        elif self._wakes is not None and not future.cancelled():
            record, _ = future.result()  # (its end is committed; learnt while still busy)
            self._wakes.ran(node_id, record.seen_commit)
        self._busy.pop(node_id, None)
        with self._wake:  # the node is free (and its run may have committed, or queued more)
            self._dirty = self._queue_changed = True
            self._wake.notify_all()

    def _ended(self, tx: Transaction, item: QueueItem, node: Node, record: RunRecord,
               session: RunSession | None) -> None:
        """In the transaction that records the run's end: the item leaves the queue and its
        follow-up (a retry, a continuation) comes in."""
        if not self.engine.claims.holds(tx, node.id):
            return  # (another engine took the node over: the item is its now)
        if record.status == "cancelled" and record.error == SHUTDOWN_REASON:
            tx.queue.release(item.id)
            return
        tx.queue.remove(item.id)
        if record.status == "succeeded":
            self._drop_read_wakeups(tx, node, record)
        self._queue_readers(tx, node, record)
        now = dt.datetime.now(dt.UTC)
        settings = node.settings
        requested = session is not None and session.requests.new_run \
            and record.status in ("succeeded", "failed", "timed_out")
        if record.status in ("failed", "timed_out") and item.attempt <= settings.retries_count \
                and not requested:
            delay = settings.retries_backoff_seconds * 2 ** (item.attempt - 1)
            tx.queue.enqueue(node.id, "retry", not_before=now + dt.timedelta(seconds=delay),
                             attempt=item.attempt + 1, parameters=item.parameters)
        elif requested:  # (also after a failure: it asked to run again, e.g. rate-limited)
            assert session is not None
            delay = session.requests.wait_seconds or 0.0
            tx.queue.enqueue(node.id, "continuation",
                             not_before=now + dt.timedelta(seconds=delay),
                             parameters=item.parameters)

    # ------------------------------------------------------------------ wake-ups
    def _woken_by_rows(self) -> list[Node]:
        """The nodes that run when a table they read gets rows (cron nodes run on their
        schedule only)."""
        return [n for n in self.app.nodes if n.kind in RUNNABLE_KINDS and n.reads()
                and n.trigger is None and n.configured]

    def _queue_readers(self, tx: Transaction, node: Node, record: RunRecord) -> None:
        """Queue the readers of what a run wrote, in the transaction that records its end
        (which commits its last rows): a pipeline's next stage is waiting as soon as its
        rows are visible, without a look for out-of-date nodes and a turn at the store's
        commit lock of its own first. (A reader that is running gets its next run when it
        ends, as :meth:`_wake_out_of_date` would give it.)"""
        written = {table for table, n in (record.rows_written or {}).items() if n}
        if not written:
            return
        for reader in self._woken_by_rows():
            if reader.id != node.id and written.intersection(reader.reads()):
                tx.queue.enqueue(reader.id, "upstream", coalesce=True)
                if reader.id in self._busy:
                    self._woken_running.add(reader.id)

    def _drop_read_wakeups(self, tx: Transaction, node: Node, record: RunRecord) -> None:
        """In the transaction that records a run's end: the node's waiting wake-ups by new
        rows (queued while it ran) leave the queue if the run read every commit to its inputs
        (its ``seen_commit``: patterns/engine/read_through.py). A commit after that, landed
        while the run ran or not, keeps them; one after this transaction queues anew."""
        if node.id not in self._woken_running and not self.engine.claims.shared:
            return  # (nothing queued it while it ran; other engines could have)
        self._woken_running.discard(node.id)
        waiting = [i for i in tx.queue.items(started=False)
                   if i.node_id == node.id and i.trigger == "upstream"]
        if waiting and not with_new_rows(tx, [node], {node.id: record.seen_commit}):
            for woken in waiting:
                tx.queue.remove(woken.id)

    def _wake_out_of_date(self) -> bool:
        """Queue the nodes whose inputs got rows; whether any was queued."""
        nodes = [n for n in self._woken_by_rows() if n.id not in self._busy]
        if not nodes:
            return False
        # Per node, the commit its latest finished run started after (any outcome: a node
        # that failed on some rows is not re-run for them until more arrive).
        if self._wakes is not None:
            stale = self._wakes.stale(nodes)
        else:
            with self.engine.store.read() as view:
                stale = with_new_rows(view, nodes,
                                      view.runs.seen_commits(succeeded_only=False))
        waiting: set[str] = set()
        if stale:  # (one already waiting in the queue needs no write transaction)
            with self.engine.store.read() as view:
                waiting = {item.node_id for item in view.queue.items(started=False)}
            stale = [n for n in stale if n.id not in waiting]
        if not stale:
            return False
        # With nothing else waiting, a free worker and no other engine on the store, a stale
        # node's item is queued and started in one transaction: one turn at the store's
        # commit lock, which data commits may hold for a while, instead of two.
        free = 0 if waiting or self.engine.claims.shared else self.workers - len(self._busy)
        added = False
        starting: list[tuple[QueueItem, Node, str, Lease]] = []
        try:
            with self.engine.store.transaction() as tx:
                for node in stale:
                    item = tx.queue.enqueue(node.id, "upstream", coalesce=True)
                    if item is None:
                        continue
                    added = True
                    if len(starting) < free:
                        run_id = new_run_id()
                        starting.append((item, node, run_id, self._take(tx, item, node, run_id)))
        except _Taken:  # (a store of one process grants every lease: not expected)
            return self._wake_queued(stale)
        for started in starting:
            self._submit(*started)
        return added

    def _wake_queued(self, stale: list[Node]) -> bool:
        """Queue ``stale`` nodes' runs (started by :meth:`_start_due`)."""
        added = False
        with self.engine.store.transaction() as tx:
            for node in stale:
                added |= tx.queue.enqueue(node.id, "upstream", coalesce=True) is not None
        return added

    def _schedules(self) -> dict[str, Schedule]:
        """The cron schedules (kept in memory; only this scheduler changes them)."""
        cached = self._schedule_cache
        if cached is not None:
            return cached
        generation = self._schedule_generation
        with self.engine.store.read() as view:
            schedules = view.schedules.all()
        if generation == self._schedule_generation:  # no reload() raced this read
            self._schedule_cache = schedules
        return schedules

    def _fire_schedules(self) -> bool:
        """Queue the runs of due cron slots; whether any was queued."""
        now = dt.datetime.now(dt.UTC)
        fired = False
        for schedule in list(self._schedules().values()):
            if schedule.next_fire > now:
                continue
            moved = Schedule(schedule.node_id, schedule.cron, schedule.timezone,
                             next_fire(schedule.cron, schedule.timezone, now))
            with self.engine.store.transaction() as tx:
                stored = tx.schedules.all().get(schedule.node_id)
                if stored is not None and stored.next_fire > now:
                    moved = stored  # (another engine of the store fired this slot)
                else:
                    tx.queue.enqueue(schedule.node_id, "schedule", coalesce=True)
                    tx.schedules.set(moved)
                    fired = True
            self._schedules()[schedule.node_id] = moved
        return fired

    # ------------------------------------------------------------------ start-up
    def _recover(self) -> None:
        """After a stop or a crash: interrupted runs are recorded as such and queued again;
        cron schedules follow graph.yml (a slot missed while down fires once); nodes that
        never ran get their first run."""
        now = dt.datetime.now(dt.UTC)
        with self.engine.store.transaction() as tx:
            self._recover_lost(tx)
            self._sync_schedules(tx, now)
            ran = tx.runs.nodes_that_ran()
            queued = {i.node_id for i in tx.queue.items()}
            for node in self.app.nodes:
                if (node.kind in RUNNABLE_KINDS and node.trigger != "manual" and node.configured
                        and not is_cron(node.trigger) and node.id not in ran
                        and node.id not in queued and not node.reads()):
                    tx.queue.enqueue(node.id, "first run")

    def _recover_lost(self, tx: Transaction) -> bool:
        """Runs whose engine died (none holds their node's lease) end as failed and their
        queue items wait again; whether there were any."""
        now = dt.datetime.now(dt.UTC)
        interrupted = recover_lost_runs(tx, ENGINE_DIED, now)
        again = [item.run_id for item in interrupted if item.run_id]
        for item in interrupted:  # (died before its start was recorded: run_start.py)
            if item.run_id:
                node = self._node(item.node_id)
                record_unrecorded(tx, self.engine.store, item.run_id, item.node_id,
                                  node.title if node else item.node_id, item.trigger,
                                  item.attempt, item.enqueued_at, ENGINE_DIED, now)
        tx.runs.add_error(again, "; it runs again")
        return bool(interrupted)

    def _watch_others(self) -> tuple[bool, bool]:
        """With other engines on the store: whether they committed since the last look
        (readers may be out of date), and whether runs of a dead one were recovered."""
        seq = self.engine.store.last_commit()
        committed, self._seen_commit = seq != self._seen_commit, seq
        recovered = False
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.engine.claims.seconds / 3
            with self.engine.store.transaction() as tx:
                recovered = self._recover_lost(tx)
            if recovered:
                log.warning("runs of an engine that stopped renewing its leases were "
                            "recovered; they run again")
        return committed, recovered

    def reload(self) -> None:
        """graph.yml changed (hot reload): schedules follow it; queued runs are kept."""
        with self.engine.store.transaction() as tx:
            self._sync_schedules(tx, dt.datetime.now(dt.UTC), fire_missed=False)
        self._schedule_generation += 1
        self._schedule_cache = None
        with self._wake:
            self._dirty = self._queue_changed = True
            self._wake.notify_all()

    def _sync_schedules(self, tx: Transaction, now: dt.datetime,
                        fire_missed: bool = True) -> None:
        stored = tx.schedules.all()
        wanted = {n.id: n for n in self.app.nodes
                  if n.kind in RUNNABLE_KINDS and is_cron(n.trigger) and n.configured}
        for node_id in set(stored) - set(wanted):
            tx.schedules.drop(node_id)
        for node_id, node in wanted.items():
            cron, tz = str(node.trigger), node.settings.timezone
            old = stored.get(node_id)
            if old is not None and (old.cron, old.timezone) == (cron, tz):
                if old.next_fire > now or not fire_missed:
                    continue
                tx.queue.enqueue(node_id, "schedule", coalesce=True)  # missed while down
            tx.schedules.set(Schedule(node_id, cron, tz, next_fire(cron, tz, now)))

    def _node(self, node_id: str) -> Node | None:
        return next((n for n in self.app.nodes if n.id == node_id), None)

