"""The Dask task that carries out one node run on a Dask worker.

It starts the node process there, as the local launcher does (a warm worker per Python
environment, the run in a process group of its own, killed at its time limit), with the
app folder at the path the engine has it at. The node process connects to the engine's data
plane over TCP with its run token (both in its config), so the data never passes through
Dask. Its output goes back as it comes, in Dask events of the launcher's topic (a batch every
:data:`FLUSH_SECONDS`); the run is stopped when the engine sets the run's stop event.

Dask runs a task again on another worker when its worker dies: the task finds its start
event already set and returns ``{"stale": True}`` at once, and the engine starts the run
again itself, from its last checkpoint, with a new token (see :mod:`patterns.engine.relaunch`).
The lost run's own process does not outlive its worker: the warm worker that forked it ends,
killing its runs, when the worker process's end of its pipe closes.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from patterns.engine.launcher import Exit, LogCapture, ProcessLauncher

#: How often output lines go back to the engine (and the stop event is looked at).
FLUSH_SECONDS = 0.1
STOP_POLL_SECONDS = 0.25

_launcher: ProcessLauncher | None = None
_launcher_lock = threading.Lock()


def started_event(key: str) -> str:
    return f"patterns-started-{key}"


def stop_event(key: str) -> str:
    return f"patterns-stop-{key}"


def run_on_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Carry out the run ``spec`` describes (``key``, ``topic``, ``config``, ``app_root``,
    ``node_file``, ``time_limit``, ``python``); its exit as a dict: ``code``,
    ``timed_out``, ``lines`` (sent), or ``stale`` or ``error``."""
    from distributed import Event, get_worker

    worker = get_worker()
    key = str(spec["key"])
    started = Event(started_event(key))
    if started.is_set():
        return {"stale": True}
    started.set()
    stop = Event(stop_event(key))  # (set before the run starts: it is killed as it starts)
    app_root = Path(str(spec["app_root"]))
    node_file = str(spec["node_file"])
    if not (app_root / node_file).is_file():
        return {"error": f"the Dask worker {worker.address} has no {app_root / node_file}: "
                         f"each worker needs the app folder at the same path as the engine "
                         f"(a shared or synced folder; see docs/deploy.md)"}
    python = spec.get("python")
    if not python or not os.path.exists(str(python)):
        python = None  # (the worker's own Python, with patterns installed)
    outbox = _Outbox(worker, str(spec["topic"]), key)
    launcher = _shared_launcher()
    pids: list[int] = []
    ended: list[Exit] = []
    done = threading.Event()

    def carry_out() -> None:
        try:
            ended.append(launcher.run_process(
                spec["config"], app_root, float(spec["time_limit"]), LogCapture(),
                outbox.add, on_start=pids.append,
                python=str(python) if python else None))
        finally:
            done.set()
            outbox.close()

    # The stop event is watched beside the run (a long poll on the scheduler), so that a
    # short run ends as soon as its process does.
    stopped = threading.Event()
    threading.Thread(target=_watch_stop, args=(stop, stopped, done, pids, launcher),
                     name=f"patterns-stop-{key}", daemon=True).start()
    carry_out()
    exit_ = ended[0] if ended else Exit(None)
    return {"code": exit_.code, "timed_out": exit_.timed_out, "lines": outbox.sent,
            "cancelled": stopped.is_set(), "worker": worker.address}


def _watch_stop(stop: Any, stopped: threading.Event, done: threading.Event, pids: list[int],
                launcher: ProcessLauncher) -> None:
    """Until the run has ended: once ``stop`` is set, kill the run (as soon as it has a
    process)."""
    while not done.is_set():
        try:
            asked = stopped.is_set() or bool(stop.wait(timeout=STOP_POLL_SECONDS))
        except Exception:  # (the scheduler is gone: no one is left to ask for a stop)
            return
        if asked:
            stopped.set()
            if pids:
                launcher.kill(pids[0])
                return
            time.sleep(0.02)


def _shared_launcher() -> ProcessLauncher:
    """One launcher per worker process, so runs share its warm workers."""
    global _launcher
    with _launcher_lock:
        if _launcher is None:
            _launcher = ProcessLauncher()
        return _launcher


class _Outbox:
    """Output lines on their way to the engine, sent in batches as Dask events."""

    def __init__(self, worker: Any, topic: str, key: str) -> None:
        self.worker = worker
        self.topic = topic
        self.key = key
        self.sent = 0
        self._lines: list[list[str | None]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._flush_often, daemon=True,
                                        name=f"patterns-output-{key}")
        self._thread.start()

    def add(self, stream: str, text: str, level: str | None) -> None:
        with self._lock:
            self._lines.append([stream, text, level])

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=10)
        self._flush()

    def _flush_often(self) -> None:
        while not self._closed.wait(FLUSH_SECONDS):
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
            if not lines:
                return
            self.sent += len(lines)
            self.worker.log_event(self.topic, {"key": self.key, "lines": lines,
                                               "at": time.time()})
