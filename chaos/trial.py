"""What the scenarios share: running the CLI, the outcome of a trial, waiting with deadlines."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chaos.check import Verdict

COMMAND = [sys.executable, "-m", "patterns.cli.main"]
MARK = "PATTERNS_CHAOS_TRIAL"


@dataclass
class Trial:
    """One trial: the scenario, where it struck (``kill:engine``, ``fault:io``, ``missed``
    when the app finished before the blow), and what the check found."""

    scenario: str
    point: str
    verdict: Verdict
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"scenario": self.scenario, "point": self.point, "ok": self.verdict.ok,
                "lost": self.verdict.lost, "doubled": self.verdict.doubled,
                "mismatches": self.verdict.mismatches, "details": self.verdict.details,
                "notes": self.notes, "seconds": round(self.seconds, 2)}


def environment(mark: str, **extra: str) -> dict[str, str]:
    """The environment of a trial's processes: marked, so leftovers can be found."""
    env = {k: v for k, v in os.environ.items() if k != "PATTERNS_FAULTS"}
    env.update({MARK: mark, "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def new_mark() -> str:
    return uuid.uuid4().hex


def leftovers(mark: str) -> list[int]:
    """Processes still alive that carry the trial's mark in their environment."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ.split(b"\0") and state != "Z":
            found.append(int(entry))
    return found


def reap(mark: str, deadline: float = 10.0) -> list[int]:
    """Wait for the trial's processes to end; SIGKILL what is left after ``deadline``
    seconds and return those pids (processes that outlived their engine)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if not leftovers(mark):
            return []
        time.sleep(0.05)
    stuck = leftovers(mark)
    for pid in stuck:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    return stuck


def run_cli(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def recover(app: Path, env: dict[str, str], attempts: int = 6) -> list[str]:
    """``patterns run`` until it succeeds (the app is up to date); notes on failed tries."""
    notes = []
    for _ in range(attempts):
        done = run_cli(["run", str(app), "-q"], env)
        if done.returncode == 0:
            return notes
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        notes.append("recovery run failed: " + " | ".join(tail))
    raise RecoveryFailed("; ".join(notes))


class RecoveryFailed(Exception):
    """The app could not be brought up to date after a trial: itself a finding."""


def wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
