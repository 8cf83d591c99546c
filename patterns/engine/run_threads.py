"""Threads kept for the work every local run has beside it: serving its control channel
(its output and exit are watched by the thread that waits for the run, see
:meth:`patterns.engine.launcher.ProcessLauncher._watch`).

Each run needed four such threads for its whole life before that, and still needs one.
Starting a thread waits until the new thread is scheduled (``Thread.start``), which on a
busy machine took up to 4 ms (p99; p50 0.06 ms), on the run's critical path. Finished
threads wait here for the next run's work instead, so a run that follows another starts
none; one left idle for :data:`IDLE_SECONDS` ends. They are daemon threads, as the ones
started per run were.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

#: A thread with no work for this long ends.
IDLE_SECONDS = 60.0


class Task:
    """One piece of work handed to a kept thread: :meth:`join` waits for its end."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self.work = work
        self.done = threading.Event()

    def join(self, timeout: float | None = None) -> bool:
        """Whether it has ended (within ``timeout`` seconds)."""
        return self.done.wait(timeout)


class RunThreads:
    """Kept threads: :meth:`start` runs work on an idle one, or on a new one if none is."""

    def __init__(self, name: str = "patterns-run") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Task | None]] = []

    def start(self, work: Callable[[], Any]) -> Task:
        task = Task(work)
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is not None:
            inbox.put(task)
            return task
        inbox = queue.SimpleQueue()
        inbox.put(task)
        threading.Thread(target=self._serve, args=(inbox,), daemon=True,
                         name=self.name).start()
        return task

    def _serve(self, inbox: queue.SimpleQueue[Task | None]) -> None:
        while True:
            try:
                task = inbox.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if inbox not in self._idle:  # (just handed work: take it)
                        continue
                    self._idle.remove(inbox)
                return
            if task is None:
                return
            try:
                task.work()
            except BaseException:  # (the work's own handler reports; the thread goes on)
                import logging

                logging.getLogger("patterns.engine").exception("a run's helper failed")
            finally:
                task.done.set()
            with self._lock:
                self._idle.append(inbox)


#: The engine's kept threads (one set per process: runs of several engines share them).
RUN_THREADS = RunThreads()
