"""Reactive runs: ``patterns run`` runs what is out of date until nothing is left to do.

A node that needs configuration (:attr:`Node.needs_configuration`) is skipped; the nodes
downstream of it run as usual, they just get no new rows from it.

A node is out of date when a table it reads got rows committed (by another node) after the
start of its last successful run. A pass starts with the nodes that read no table and the
out-of-date ones (or with one node, ``--node``, and then only what is downstream of it), and
keeps running nodes whose inputs got new rows. When that settles, a node that has never
run successfully (every node of a cycle, on the first pass) gets one first run, and the
pass goes on from there. Each node runs at most once at a time;
different nodes run in parallel up to the worker count. A cycle converges as soon as a
round adds no rows; a node that fails is not run again in the same pass.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from patterns.engine.engine import Engine
from patterns.engine.session import RunSession
from patterns.errors import EngineError
from patterns.graph.model import Node
from patterns.store.interface import Transaction
from patterns.store.model import RunRecord

RUNNABLE_KINDS = ("python", "sql")
#: The fewest runs at once by default, whatever the cores: the stages of a pipeline run
#: side by side (each waits on the others' commits much of the time; with one slot per core
#: on two cores, the third stage of a four-node pipeline waited for a free slot).
MIN_WORKERS = 4


def default_workers() -> int:
    """Runs at once when no number is given: one per core, at least :data:`MIN_WORKERS`."""
    return max(MIN_WORKERS, os.cpu_count() or 1)


def needs_configuration(node: Node) -> str:
    """Why ``node`` does not run: its configuration problems, each with its fix."""
    return "needs configuration: " + "; ".join(str(p) for p in node.needs_configuration)


@dataclass
class PassResult:
    runs: list[RunRecord] = field(default_factory=list)
    skipped: list[tuple[Node, str]] = field(default_factory=list)
    stopped: str | None = None
    #: The pass was stopped from outside (Ctrl-C): its running nodes were cancelled.
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """No stop, and every node's last run in the pass succeeded (a retry may cure a
        failed attempt)."""
        last: dict[str, str] = {}
        for run in self.runs:
            last[run.node_id] = run.status
        return self.stopped is None and all(s == "succeeded" for s in last.values())


@dataclass(frozen=True)
class Queued:
    node: Node
    trigger: str
    not_before: float = 0.0
    attempt: int = 1


class ReactivePass:
    def __init__(self, engine: Engine, *, workers: int | None = None,
                 max_runs: int = 1000) -> None:
        self.engine = engine
        self.app = engine.app
        self.workers = workers or default_workers()
        self.max_runs = max_runs
        self._stopping: str | None = None

    def stop(self, reason: str) -> int:
        """Stop the pass (Ctrl-C; any thread): nothing more starts, and every run in
        progress is cancelled (its process group killed, rolled back to its last checkpoint,
        recorded as ``cancelled`` with ``reason``). How many runs were cancelled."""
        self._stopping = reason
        return sum(self.engine.cancel(run_id, reason) for run_id in self.engine.running_runs())

    def run(self, only: Node | None = None,
            params: dict[str, dict[str, Any]] | None = None) -> PassResult:
        result = PassResult()
        nodes = [n for n in self.app.nodes if n.kind in RUNNABLE_KINDS and n.configured]
        for n in self.app.nodes:
            if not n.configured:
                result.skipped.append((n, needs_configuration(n)))
            elif n.kind not in RUNNABLE_KINDS and not n.members:  # a component runs its members
                why = ("webhook nodes take records under `patterns serve`"
                       if n.kind == "webhook" else f"{n.kind} nodes do not run in `patterns run`")
                result.skipped.append((n, why))
        starts = [] if only is None else self.app.entry_members(only) if only.members else [only]
        scope = ({i for s in starts for i in self._downstream_closure(s)}
                 if only else {n.id for n in nodes})
        with self.engine.store.read() as view:  # (a node never run has its first run)
            succeeded = view.runs.seen_commits(succeeded_only=True)
        failed: set[str] = set()
        running: dict[Future[tuple[RunRecord, RunSession | None]], Node] = {}
        queued: list[Queued] = []
        if only is not None and only.members:
            queued += [Queued(n, "manual") for n in starts]
        elif only is not None:
            if only.kind not in RUNNABLE_KINDS:
                raise EngineError(f"node {only.rel_file or only.id} is a {only.kind} node; "
                                  f"only Python and SQL nodes run in this version")
            configured = next((n for n in self.app.nodes if n.id == only.id), only)
            if not configured.configured:
                raise EngineError(f"node {only.label} {needs_configuration(configured)}")
            queued.append(Queued(only, "manual"))
        else:  # (why each runs is its trigger: a first run, or a source is always out of date)
            for node in nodes:
                if not node.reads() and node.trigger != "manual":
                    queued.append(Queued(node, "out of date" if node.id in succeeded
                                         else "first run"))
        with ThreadPoolExecutor(self.workers, thread_name_prefix="patterns-run") as pool:
            while True:
                if self._stopping is not None:  # (again each round: a run that was
                    # just starting when the pass was stopped is cancelled too)
                    result.interrupted = True
                    result.stopped = ("stopped: nothing more was started, and the runs in "
                                      "progress were cancelled")
                    queued.clear()
                    for future in [f for f in running if f.cancel()]:  # not started yet
                        running.pop(future)
                    self.stop(self._stopping)
                    if not running:
                        break
                busy = {n.id for n in running.values()}
                waiting = {q.node.id for q in queued}
                stopping = self._stopping is not None
                # (woken by a run of this pass: upstream; stale when the pass began: out of
                # date, or its first run if it never succeeded)
                woken = bool(result.runs or running)
                for node in [] if stopping else self._out_of_date(nodes, scope,
                                                                   failed | busy | waiting):
                    queued.append(Queued(node, "upstream" if woken else "out of date"
                                         if node.id in succeeded else "first run"))
                    waiting.add(node.id)
                now = time.time()
                for item in list(queued):
                    node = item.node
                    if stopping or node.id in busy or item.not_before > now:
                        continue
                    if len(result.runs) + len(running) >= self.max_runs:
                        result.stopped = (
                            f"stopped after {self.max_runs} runs: the app keeps producing new "
                            f"rows (a cycle, or a node requesting new runs forever?); raise "
                            f"--max-runs if this is expected")
                        queued.clear()
                        break
                    queued.remove(item)
                    busy.add(node.id)
                    overrides = (params or {}).get(node.id)
                    future = pool.submit(self.engine.run_node, node, item.trigger, overrides,
                                         item.attempt)
                    running[future] = node
                if not running:
                    if not queued and only is None and not stopping:
                        queued = [Queued(n, "first run") for n in self._never_run(nodes, failed)]
                    if not queued:
                        break
                    soonest = min(q.not_before for q in queued)
                    time.sleep(max(0.0, min(soonest - time.time(), 1.0)))
                    continue
                done, _ = wait(list(running), return_when=FIRST_COMPLETED, timeout=1.0)
                for future in done:
                    node = running.pop(future)
                    record, session = future.result()
                    result.runs.append(record)
                    requested = session is not None and session.requests.new_run
                    if record.status in ("failed", "timed_out") and requested:
                        # (it asked to run again, e.g. after a rate limit: that run is its
                        # follow-up, instead of a retry)
                        assert session is not None
                        delay = session.requests.wait_seconds or 0.0
                        queued.append(Queued(node, "continuation", time.time() + delay))
                    elif record.status != "succeeded":
                        retry = None if self._stopping else self._retry(node, record)
                        if retry is None:
                            failed.add(node.id)
                        else:
                            queued.append(retry)
                    elif session is not None and session.requests.new_run:
                        delay = session.requests.wait_seconds or 0.0
                        queued.append(Queued(node, "continuation", time.time() + delay))
        return result

    def _retry(self, node: Node, record: RunRecord) -> Queued | None:
        """The next attempt of a failed run, with exponential backoff, if retries are left."""
        settings = node.settings
        if record.attempt > settings.retries_count:
            return None
        delay = settings.retries_backoff_seconds * 2 ** (record.attempt - 1)
        return Queued(node, "retry", time.time() + delay, record.attempt + 1)

    def _out_of_date(self, nodes: list[Node], scope: set[str], exclude: set[str]) -> list[Node]:
        candidates = [n for n in nodes if n.id in scope and n.id not in exclude and n.reads()
                      and n.trigger != "manual"]
        if not candidates:
            return []
        with self.engine.store.read() as view:
            return with_new_rows(view, candidates, view.runs.seen_commits(succeeded_only=True))

    def _never_run(self, nodes: list[Node], exclude: set[str]) -> list[Node]:
        """Nodes that never succeeded (all of a cycle, say): each gets one first run."""
        with self.engine.store.read() as view:
            last = view.runs.seen_commits(succeeded_only=True)
        return [n for n in nodes if n.id not in last and n.id not in exclude
                and n.trigger != "manual"]

    def _downstream_closure(self, start: Node) -> set[str]:
        seen = {start.id}
        frontier = [start]
        while frontier:
            node = frontier.pop()
            for nxt in self.app.downstream(node):
                if nxt.id not in seen:
                    seen.add(nxt.id)
                    frontier.append(nxt)
        return seen


def with_new_rows(view: Transaction, nodes: list[Node], seen: dict[str, int]) -> list[Node]:
    """The ``nodes`` whose input tables got rows committed by another node (waking ones)
    after the commit each started from (``seen``, per node id; 0 if absent)."""
    if not nodes:
        return []
    return out_of_date(nodes, seen, view.commits.last_by_writer(
        min(seen.get(n.id, 0) for n in nodes)))


def out_of_date(nodes: list[Node], seen: Mapping[str, int],
                last: Mapping[tuple[str, str | None], int]) -> list[Node]:
    """The ``nodes`` that a table they read got a waking commit after ``seen`` (per node id;
    0 if absent) from another node, by ``last``: per (table, writing node), the last such
    commit (:meth:`~patterns.store.interface.CommitRepository.last_by_writer`).

    Each node looks at the tables it reads only, not at every pair: the scheduler asks after
    every commit, and a graph of a few hundred nodes has as many pairs (every node against
    every pair took 14 ms a look with 500 nodes, on the scheduler's thread)."""
    writers: dict[str, list[tuple[str | None, int]]] = {}
    for (table, writer), seq in last.items():
        writers.setdefault(table, []).append((writer, seq))
    out = []
    for node in nodes:
        after = seen.get(node.id, 0)
        if any(seq > after and writer != node.id
               for table in set(node.reads()) for writer, seq in writers.get(table, ())):
            out.append(node)
    return out
