"""Benchmark 4: what a trivial node run costs, trigger → user code → commit → recorded.

The node appends one record. Each run goes through ``Engine.run_node`` exactly as
``patterns run`` and the server start it (run record, warm worker fork, data plane, commit,
run record again, log saved). Baseline: starting ``python -c pass`` as a process, in the
same run. Also reported: the same run started cold (no warm worker), for reference, and
the same run in the OS sandbox (as ``patterns serve`` runs nodes; bubblewrap, see
patterns/engine/sandbox.py) against the unsandboxed one, measured turn about with it so that
both see the same load: it must cost at most 10 % more. For reference, the CPU time of a
warm run, split between the engine's process and the node side (the warm worker, its spares
and runs), against that of one ``python -c pass``: on a shared machine CPU time moves less
than wall time.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from contextlib import ExitStack

from bench.common import PYTHON, Figure, median, percentile, temp_app

GRAPH = """
title: Trivial
functions:
  - node_file: noop.py
stores:
  - table: out
"""
NODE = """
from patterns import Table
Table("out", "w").append({"n": 1})
"""


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _python_pass(n: int) -> tuple[list[float], float]:
    """Wall times, and the CPU seconds of one ``python -c pass`` on average."""
    times = []
    cpu = _cpu(resource.RUSAGE_CHILDREN)
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run([PYTHON, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return times, (_cpu(resource.RUSAGE_CHILDREN) - cpu) / n


def _worker_cpu(launcher: object) -> float:
    """CPU seconds the warm worker has used so far, its reaped children's included."""
    total = 0.0
    for worker in getattr(launcher, "_workers", {}).values():
        with open(f"/proc/{worker.proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


class _Cpu:
    """CPU seconds per run: the engine's process, and the node side (the warm worker, its
    spares and runs: counted once the engine has closed and waited for the worker, less
    what the worker had used before the first timed run)."""

    engine = 0.0
    nodes = 0.0


def _runs(n: int, warm: bool, cpu: _Cpu | None = None) -> list[float]:
    from patterns.engine.engine import Engine
    from patterns.engine.launcher import ProcessLauncher
    from patterns.graph.loader import load_app

    with temp_app({"noop.py": NODE}, GRAPH) as root:
        app = load_app(root)
        with Engine(app, launcher=ProcessLauncher(warm=warm)) as engine:
            node = app.nodes[0]
            record, _ = engine.run_node(node, "manual")  # the worker is warm from here on
            assert record.status == "succeeded", record.error
            times = []
            own, children = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
            # (the worker's CPU so far, its start-up imports among it, is no run's: it is
            # counted with the children only when the worker ends)
            children += _worker_cpu(engine.launcher) if warm else 0.0
            for _ in range(n):
                start = time.perf_counter()
                record, _ = engine.run_node(node, "manual")
                times.append(time.perf_counter() - start)
                assert record.status == "succeeded", record.error
            own = _cpu(resource.RUSAGE_SELF) - own
            out = engine.store.table("out")
            assert out is not None and engine.store.count(out) == n + 1
        if cpu is not None:
            cpu.engine, cpu.nodes = own / n, (_cpu(resource.RUSAGE_CHILDREN) - children) / n
    return times


def _turn_about(n: int) -> tuple[list[float], list[float]]:
    """Warm runs without and with the sandbox, one of each in turn."""
    from patterns.engine.engine import Engine
    from patterns.engine.launcher import ProcessLauncher, sandboxed_launcher
    from patterns.graph.loader import load_app

    with ExitStack() as stack:
        engines = []
        for sandboxed in (False, True):
            app = load_app(stack.enter_context(temp_app({"noop.py": NODE}, GRAPH)))
            launcher = sandboxed_launcher(app.root) if sandboxed else ProcessLauncher()
            engines.append(stack.enter_context(Engine(app, launcher=launcher)))
        times: tuple[list[float], list[float]] = ([], [])
        for i in range(n + 1):
            for engine, found in zip(engines, times, strict=True):
                start = time.perf_counter()
                record, _ = engine.run_node(engine.app.nodes[0], "manual")
                if i:  # the first: the worker is warm from here on
                    found.append(time.perf_counter() - start)
                assert record.status == "succeeded", record.error
    return times


def run(small: bool) -> list[Figure]:
    n = 20 if small else 200
    baseline, pass_cpu = _python_pass(n if small else 100)
    cpu = _Cpu()
    warm = _runs(n, warm=True, cpu=cpu)
    cold = _runs(max(5, n // 10), warm=False)
    base_p50 = median(baseline) * 1000
    from patterns.engine.sandbox import available

    sandbox: list[Figure] = []
    if available():
        plain, sandboxed = _turn_about(n)
        sandbox = [
            Figure("run_overhead", "trivial run p50, warm worker, sandboxed",
                   median(sandboxed) * 1000, median(plain) * 1000, "ms", "<= 1.1", n,
                   "baseline: the same run unsandboxed, measured turn about, p50"),
            Figure("run_overhead", "trivial run p95, warm worker, sandboxed",
                   percentile(sandboxed, 95) * 1000, percentile(plain, 95) * 1000, "ms", "",
                   n, "for reference: baseline the same run unsandboxed, p95"),
        ]
    return [
        Figure("run_overhead", "trivial run p50, warm worker", median(warm) * 1000, base_p50,
               "ms", "<= 0.5", n, "baseline: python -c pass, p50"),
        Figure("run_overhead", "trivial run p95, warm worker", percentile(warm, 95) * 1000,
               percentile(baseline, 95) * 1000, "ms", "<= 0.8", n,
               "baseline: python -c pass, p95"),
        Figure("run_overhead", "trivial run p50, cold start", median(cold) * 1000, base_p50,
               "ms", "", len(cold), "for reference: a fresh process per run"),
        Figure("run_overhead", "CPU per trivial run, engine process", cpu.engine * 1000,
               pass_cpu * 1000, "ms", "", n,
               "for reference: baseline the CPU of one python -c pass"),
        Figure("run_overhead", "CPU per trivial run, warm worker and its runs",
               cpu.nodes * 1000, pass_cpu * 1000, "ms", "", n,
               "for reference: baseline the CPU of one python -c pass (includes the "
               "worker's exit)"),
        *sandbox,
    ]
