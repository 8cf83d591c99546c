"""Ctrl-C during ``patterns run``: the first one stops the pass cleanly, a second one quits.

The first SIGINT (or SIGTERM) starts nothing more and cancels every node run in progress:
its process group (or warm-worker run, or Dask task) is killed, what it wrote after its last
checkpoint is dropped, and the run is recorded as ``cancelled``; the pass then ends as usual,
with its summary, and the command exits 130. A second one exits at once (130), after a
last kill of the runs still going; the next engine to open the store ends any run its
record still shows as running (see :func:`patterns.engine.engine.end_lost_runs`).

The signal handler itself only sets things going on a thread of its own: it runs between
two bytecodes of the main thread, which may hold a lock the cancelling needs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from patterns.engine.reactive import ReactivePass

#: What a run stopped with Ctrl-C is recorded with (its error).
INTERRUPTED = "cancelled with Ctrl-C; rolled back to its last checkpoint"
#: The exit code of a command stopped by SIGINT (128 + 2), as shells use.
EXIT_INTERRUPTED = 130
#: How long a second Ctrl-C waits for the last kill before the process exits anyway.
LAST_KILL_SECONDS = 2.0


@contextlib.contextmanager
def stop_on_interrupt(run_pass: ReactivePass, say: Callable[[str], None]) -> Iterator[None]:
    """While the block runs, Ctrl-C (SIGINT) and SIGTERM stop ``run_pass`` as described
    above; ``say`` tells the user what is happening (one line). The previous handlers are
    put back afterwards, unless Ctrl-C was pressed: then a second press still quits at once
    while the summary prints and the engine closes. Only on the main thread (signals are delivered there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    presses = 0

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            say("stopping: cancelling the running nodes and rolling them back "
                "(Ctrl-C again to quit at once)")
            threading.Thread(target=run_pass.stop, args=(INTERRUPTED,), daemon=True,
                             name="patterns-interrupt").start()
            return
        last = threading.Thread(target=run_pass.stop, args=(INTERRUPTED,), daemon=True,
                                name="patterns-interrupt")
        last.start()
        last.join(LAST_KILL_SECONDS)
        os._exit(EXIT_INTERRUPTED)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        if not presses:  # (once stopping, the next press still quits at once, summary or not)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
