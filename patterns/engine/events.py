"""How the engine reports what happens. Core code never prints: the CLI, the server and
tests each plug in their own :class:`Reporter`."""

from __future__ import annotations

from typing import Protocol

from patterns.store.model import RunRecord


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
