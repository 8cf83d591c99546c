"""Benchmark: node runs on a Dask cluster (``--executor dask-local:N``).

Scaling: an app of 8 independent CPU-bound nodes (each a pure-Python loop of the same
length, writing one row), run as ``patterns run`` runs it (a reactive pass) on a local Dask
cluster of 2 worker processes, against the same pass on a cluster of 1 worker, in the same
run. Target: at most 0.6x the one-worker time. Each cluster gets one pass first (its workers
start their warm workers), then the timed pass. On a machine whose two cores other work
also uses, the ratio shows how much of a second core was to be had.

Overhead: a trivial run (one record appended) through a one-worker Dask cluster against the
same run through the local launcher (warm worker), p50 of each, measured turn about: what a
run pays for going through the Dask scheduler and a worker (for reference).
"""

from __future__ import annotations

import time
from contextlib import ExitStack

from bench.common import Figure, median, temp_app

NODES = 8

CPU_NODE = """
from patterns import Table, Parameter
n = Parameter("loops", type=int, default={loops})
total = 0
for i in range(n):
    total += i * i % 7
Table("out_{i}", "w").append({{"total": total}})
"""

TRIVIAL = """
from patterns import Table
Table("out", "w").append({"n": 1})
"""


def _cpu_app(loops: int) -> tuple[dict[str, str], str]:
    files = {f"cpu_{i}.py": CPU_NODE.format(i=i, loops=loops) for i in range(NODES)}
    graph = "title: CPU\nfunctions:\n" + "".join(
        f"  - node_file: cpu_{i}.py\n" for i in range(NODES)) + "stores:\n" + "".join(
        f"  - table: out_{i}\n" for i in range(NODES))
    return files, graph


def _pass_seconds(workers: int, loops: int) -> float:
    """The timed pass of the 8-node app on ``dask-local:workers`` (after one untimed)."""
    from patterns.engine.dask_launcher import DaskLauncher
    from patterns.engine.engine import Engine
    from patterns.engine.reactive import ReactivePass
    from patterns.graph.loader import load_app

    files, graph = _cpu_app(loops)
    with temp_app(files, graph) as root:
        launcher = DaskLauncher.local(workers)
        with Engine(load_app(root), launcher=launcher) as engine:
            seconds = []
            for _ in range(2):
                start = time.perf_counter()
                result = ReactivePass(engine, workers=NODES).run()
                seconds.append(time.perf_counter() - start)
                assert result.ok and len(result.runs) == NODES, result
        return seconds[-1]


def _overheads(n: int) -> tuple[list[float], list[float]]:
    """Trivial runs through Dask (one worker) and through the local launcher, in turn."""
    from patterns.engine.dask_launcher import DaskLauncher
    from patterns.engine.engine import Engine
    from patterns.graph.loader import load_app

    graph = "title: Trivial\nfunctions:\n  - node_file: noop.py\nstores:\n  - table: out\n"
    with ExitStack() as stack:
        engines = []
        for dask in (True, False):
            app = load_app(stack.enter_context(temp_app({"noop.py": TRIVIAL}, graph)))
            launcher = DaskLauncher.local(1) if dask else None
            engines.append(stack.enter_context(Engine(app, launcher=launcher)))
        times: tuple[list[float], list[float]] = ([], [])
        for i in range(n + 1):
            for engine, found in zip(engines, times, strict=True):
                start = time.perf_counter()
                record, _ = engine.run_node(engine.app.nodes[0], "manual")
                if i:  # the first warms the worker
                    found.append(time.perf_counter() - start)
                assert record.status == "succeeded", record.error
    return times


def run(small: bool) -> list[Figure]:
    loops = 300_000 if small else 6_000_000
    one = _pass_seconds(1, loops)
    two = _pass_seconds(2, loops)
    n = 10 if small else 100
    dask, local = _overheads(n)
    return [
        Figure("dask_scaling", f"{NODES} CPU-bound nodes on dask-local:2", two, one, "s",
               "<= 0.6", NODES, "baseline: the same pass on dask-local:1"),
        Figure("dask_scaling", "trivial run p50 through Dask", median(dask) * 1000,
               median(local) * 1000, "ms", "", n,
               "for reference: baseline the same run on the local launcher (warm worker), "
               "measured turn about"),
    ]
