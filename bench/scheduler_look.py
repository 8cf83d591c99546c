"""Benchmark 11: what the server does after each commit, and ten times a second for each open
Studio tab, does not grow with the store's history.

After every commit (a webhook under load commits several times a second) the scheduler looks
for nodes a table they read got rows in, from another node, since their latest finished run.
The commit log and the run history grow for as long as the server serves, so the look must
cost what changed since the last one, not what the store ever held.

Measured, first: one look after each of 50 commits of one row (``Scheduler._wake_out_of_date``,
the scheduler's own call, on a real store; the reader it finds out of date waits in the queue,
so looks after the first queue nothing), on a store whose history holds 1,000,000 commits and
200,000 runs, with a node whose input last changed at the start of it (the case that made each
look read the whole history: 2 s a look before this benchmark's change). The history is
written straight into the store's metadata tables as the untimed fill. Baseline, in the same
run: the same looks on a store with no history. Target: at most 1.5 times (flat).

Second: the Studio's live view's question, each node's newest run's status, 50 times on the
same stores (what patterns/server/studio_live.py asks: kept by the engine, read from the store
once; it sorted the whole run history each time, 79 ms at 1,000,000 runs). Same target.
"""

from __future__ import annotations

import time

from bench.common import Figure, median, temp_app

GRAPH = """
title: Looks
functions:
  - node_file: writer.py
    trigger: manual
  - node_file: reader.py
  - node_file: rare.py
stores:
  - table: hot
  - table: rare
"""
FILES = {
    "writer.py": "from patterns import Table\nTable('hot', 'w').append({'n': 1})\n",
    "reader.py": "from patterns import Table\nfor r in Table('hot').as_stream():\n    pass\n",
    "rare.py": "from patterns import Table\nfor r in Table('rare').as_stream():\n    pass\n",
}
LOOKS = 50


def _history(root: object, commits: int, runs: int) -> None:
    """``commits`` waking commits of ``hot`` by the writer after one of ``rare``, and
    ``runs`` finished runs of the reader; one run of the rare reader, which read the first."""
    from patterns.engine.engine import Engine
    from patterns.graph.loader import load_app
    from patterns.store.migrations import META

    with Engine(load_app(root)) as engine:  # type: ignore[arg-type]
        ids = {n.rel_file: n.id for n in engine.app.nodes}
        with engine.store.cursor() as cur:
            cur.execute(f"INSERT INTO {META}.commits VALUES (1, 'rare', 1, 'fill', ?, 1, now(), "
                        f"true)", [ids["writer.py"]])
            cur.execute(f"INSERT INTO {META}.commits SELECT i, 'hot', 1, 'fill', ?, 100, now(), "
                        f"true FROM range(2, ?) t(i)", [ids["writer.py"], commits + 2])
            cur.execute(f"SELECT setval('{META}.commit_seq', ?)", [commits + 2])
            cur.execute(f"INSERT INTO {META}.runs (id, node_id, node_title, trigger, status, "
                        f"queued_at, seen_commit) SELECT 'fill' || i, ?, 'reader', 'upstream', "
                        f"'succeeded', now(), i FROM range(1, ?) t(i)",
                        [ids["reader.py"], runs + 1])
            cur.execute(f"INSERT INTO {META}.runs (id, node_id, node_title, trigger, status, "
                        f"queued_at, seen_commit) VALUES ('fill-rare', ?, 'rare', 'upstream', "
                        f"'succeeded', now(), 1)", [ids["rare.py"]])


def _looks(commits: int, runs: int) -> tuple[list[float], list[float]]:
    import pyarrow as pa

    from patterns.engine.engine import Engine
    from patterns.engine.scheduler import Scheduler
    from patterns.graph.loader import load_app
    from patterns.store.model import Checkpoint, TableOp

    with temp_app(FILES, GRAPH) as root:
        if commits:
            _history(root, commits, runs)
        with Engine(load_app(root)) as engine:
            writer = next(n for n in engine.app.nodes if n.rel_file == "writer.py")
            scheduler = Scheduler(engine)  # (not started: the benchmark makes its looks)
            scheduler.workers = 0  # (the reader it finds waits in the queue: no run starts)
            scheduler._wake_out_of_date()  # the first look reads what the store holds
            times = []
            for i in range(LOOKS):
                engine.store.commit(Checkpoint(run_id=f"look{i}", node_id=writer.id, ops={
                    "hot": [TableOp("append", pa.table({"n": [i]}))]}))
                start = time.perf_counter()
                scheduler._wake_out_of_date()
                times.append(time.perf_counter() - start)
            with engine.store.read() as view:
                waiting = {i.node_id for i in view.queue.items(started=False)}
            reader = next(n for n in engine.app.nodes if n.rel_file == "reader.py")
            assert waiting == {reader.id}, waiting  # (found out of date, the rare one not)
            statuses = []
            for _ in range(LOOKS):  # (what each open Studio tab asks ten times a second)
                start = time.perf_counter()
                status = engine.statuses.current() if engine.statuses is not None else {}
                statuses.append(time.perf_counter() - start)
            assert not runs or status.get(reader.id) == "succeeded", status
    return times, statuses


def run(small: bool) -> list[Figure]:
    commits, runs = (20_000, 4_000) if small else (1_000_000, 200_000)
    fresh, fresh_status = map(median, _looks(0, 0))
    aged, aged_status = map(median, _looks(commits, runs))
    return [Figure("scheduler_look", "a scheduler look after a commit, long history vs none",
                   aged * 1000, fresh * 1000, "ms", "<= 1.5", commits,
                   f"{commits:,} commits and {runs:,} runs of history; median of {LOOKS} "
                   f"looks; baseline: the same looks with no history"),
            Figure("scheduler_look", "the Studio's live run statuses, long history vs none",
                   aged_status * 1e6, fresh_status * 1e6, "us", "<= 1.5", runs,
                   f"{runs:,} runs of history; median of {LOOKS} asks "
                   f"(patterns/server/studio_live.py asks every 0.1 s per open tab); "
                   f"baseline: the same with no history")]


if __name__ == "__main__":
    for figure in run(False):
        print(figure.line())
