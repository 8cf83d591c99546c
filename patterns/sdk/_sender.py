"""Shipping appended records to the engine while node code goes on.

A node that appends many records fills its buffers on its main thread; every
:data:`~patterns.sdk._runtime.FLUSH_ROWS` records the run hands the converted batch to its
:class:`Sender`, which writes it to the engine on a thread of its own. That write mostly
waits (on the socket, then on the engine reading the batch and checking it against the
table's columns) with the GIL released, so node code goes on appending meanwhile and the
engine's share runs on another core.

One write at a time, in the order they were handed over: a new one first waits for the one
before it, so at most one batch is in flight and memory stays bounded. Everything else the
node asks of the engine (a read, a checkpoint, a command, another write) goes through
:class:`InOrder`, which first waits for the write in flight: the engine sees the node's
requests in the order the node made them, and no two threads ever share the connection. A
batch the engine refuses raises its error (naming the record by the file and line that
appended it) at that point: the next write, read or checkpoint. Nothing of this changes what
is committed: writes are only staged until the run's next checkpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Sender:
    """Runs writes on a thread of its own, one at a time, in order."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, write: Callable[[], None]) -> None:
        """Start ``write`` once the write before it is done (raising that one's error)."""
        self.wait()

        def run() -> None:
            try:
                write()
            except BaseException as exc:  # handed to the node's thread by wait()
                self._error = exc

        self._thread = threading.Thread(target=run, name="patterns-sender", daemon=True)
        self._thread.start()

    def wait(self, *, quiet: bool = False) -> None:
        """Return once no write is in flight; raise the error of the last one unless
        ``quiet`` (the node is failing or rolling back anyway: that write is moot)."""
        thread = self._thread
        if thread is not None:
            thread.join()  # (a second thread waiting meanwhile joins it too)
            if self._thread is thread:
                self._thread = None
        error, self._error = self._error, None
        if error is not None and not quiet:
            raise error


class InOrder:
    """An engine client whose every call first waits for the sender's write in flight.

    ``report_error`` and ``rollback`` wait quietly: the run is failing or going back to its
    last checkpoint, which drops the staged write whatever became of it."""

    _QUIET = frozenset({"report_error", "rollback"})

    def __init__(self, client: Any, sender: Sender) -> None:
        self._client = client
        self._sender = sender

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr
        quiet = name in self._QUIET
        sender = self._sender

        def call(*args: Any, **kwargs: Any) -> Any:
            sender.wait(quiet=quiet)
            return attr(*args, **kwargs)

        return call
