"""A three-node streaming app under ``patterns run``, killed once at a random moment."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

from chaos import apps, processes
from chaos.check import StoreReader, Verdict
from chaos.trial import COMMAND, Trial, environment, new_mark, reap, recover

TOTAL = 300
TARGETS = ("engine", "worker", "node")
#: Runs ``argv[2:]`` with files limited to ``argv[1]`` bytes (a full disk, in effect).
_WITH_FSIZE = ("import os, resource, sys\n"
               "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]),) * 2)\n"
               "os.execv(sys.argv[2], sys.argv[2:])")


def trial(rng: random.Random, workdir: Path, *, faults: str | None = None,
          fsize: int | None = None) -> Trial:
    """Run the pipeline app and strike once: a SIGKILL of a random target at a random time
    (or, with ``faults``/``fsize``, a store that fails under the first pass); then recover
    with plain ``patterns run`` and check every table and state."""
    started = time.monotonic()
    app = apps.pipeline(workdir / "app", TOTAL)
    mark = new_mark()
    extra = {"PATTERNS_FAULTS": faults} if faults else {}
    env = environment(mark, **extra)
    args = [*COMMAND, "run", str(app), "-q"]
    sandboxed = faults is None and fsize is None and rng.random() < 0.5 and _can_sandbox()
    if sandboxed:
        args.append("--sandbox")  # the warm worker and the runs inside bubblewrap
    if fsize is not None:
        # The file size limit is set by a launcher that then becomes the command, not by a
        # preexec_fn: Python code run between fork and exec in this process, which has
        # threads, can crash the child before it runs anything (a SIGSEGV seen under -n 2).
        args = [sys.executable, "-c", _WITH_FSIZE, str(fsize), *args]
    errors = (workdir / "stderr.txt").open("w+")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=errors,
                            stdin=subprocess.DEVNULL, text=True)
    notes: list[str] = []
    if faults:
        point = "fault:" + faults.split("kinds=")[-1]
    elif fsize is not None:
        point = "fault:disk-full"
    else:
        point = _strike(rng, proc) + (" (sandboxed)" if sandboxed else "")
    try:
        proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        processes.kill_tree(proc.pid)
        proc.wait()
        notes.append("the struck pass hung for 300 s")
    errors.seek(0)
    shown = errors.read()
    errors.close()
    struck_store = "Traceback" in shown and point.startswith("fault")
    if point.startswith("fault") and proc.returncode == 0 and not struck_store:
        point += " (none hit)"
    stuck = reap(mark)
    if stuck:
        notes.append(f"{len(stuck)} process(es) outlived the pass")
    recovery = environment(mark)
    verdict = Verdict()
    try:
        notes += recover(app, recovery)
    except Exception as exc:  # the app can't be brought up to date: a finding
        verdict.mismatches.append(f"recovery: {exc}")
    reap(mark)
    if "Traceback" in shown:
        verdict.mismatches.append("a traceback reached the user: " + _last_line(shown))
    _check(app, verdict)
    return Trial("pipeline" if not (faults or fsize) else "faults", point, verdict,
                 time.monotonic() - started, notes)


def _strike(rng: random.Random, proc: subprocess.Popen[str]) -> str:
    """SIGKILL one of the pass's processes after a random delay; the point it hit."""
    target = rng.choice(TARGETS)
    time.sleep(rng.uniform(0.05, 1.0))
    deadline = time.monotonic() + 2.0
    while proc.poll() is None and time.monotonic() < deadline:
        if target == "engine":
            pid: int | None = proc.pid
        else:
            found = (processes.workers(proc.pid) if target == "worker"
                     else processes.node_processes(proc.pid))
            pid = rng.choice(found).pid if found else None
        if pid is not None and processes.kill(pid):
            return f"kill:{target}"
        time.sleep(0.02)
    return "missed"


def _can_sandbox() -> bool:
    try:
        from patterns.engine.sandbox import check_available

        check_available()
    except Exception:
        return False
    return True


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _check(app: Path, verdict: Verdict) -> None:
    with StoreReader(app) as store:
        expected = range(TOTAL)
        verdict.once("src", store.column("src", "n"), expected)
        mid = store.rows("mid", "n", "v")
        verdict.once("mid", [n for n, _ in mid], expected)
        verdict.agree("mid values", [v for n, v in mid if v != 2 * n], [])
        dst = store.rows("dst", "n", "v")
        verdict.once("dst", [n for n, _ in dst], expected)
        verdict.agree("source state", store.state("source01").get("written"), TOTAL)
        tally = store.state("tally001")
        verdict.agree("tally count", tally.get("count"), len(dst))
        verdict.agree("tally sum", tally.get("sum"), sum(v for _, v in dst))
        verdict.agree("runs left running", store.runs_left_running(), 0)
