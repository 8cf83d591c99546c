"""How the engine reports what happens. Core code never prints: the CLI, the server and
tests each plug in their own :class:`Reporter`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from patterns.store.model import RunRecord


@dataclass(frozen=True)
class Running:
    """A run in progress, as a live display shows it (:meth:`Engine.running_now`)."""

    run_id: str
    node_title: str
    #: When it started (``time.time()``).
    started_at: float
    #: Rows the node has sent to its tables so far (committed or not yet).
    rows_written: int


class Reporter(Protocol):
    def run_started(self, run: RunRecord) -> None: ...

    def run_output(self, run: RunRecord, stream: str, line: str,
                   level: str | None = None) -> None: ...

    def run_finished(self, run: RunRecord) -> None: ...

    def progress(self, line: str) -> None:
        """Engine work a user waits for that is not a run (building an environment)."""


class SilentReporter:
    """Reports nothing (library use, tests that read the run records instead)."""

    def run_started(self, run: RunRecord) -> None:
        pass

    def run_output(self, run: RunRecord, stream: str, line: str,
                   level: str | None = None) -> None:
        pass

    def run_finished(self, run: RunRecord) -> None:
        pass

    def progress(self, line: str) -> None:
        pass
