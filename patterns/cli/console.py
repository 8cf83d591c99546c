"""The terminal face of the engine: live run output and the summary table."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.live import Live
    from rich.text import Text

    from patterns.engine.events import Running
    from patterns.store.model import RunRecord

STATUS_STYLE = {"succeeded": "green", "failed": "red", "timed_out": "red",
                "running": "yellow", "queued": "cyan", "cancelled": "magenta"}
LEVEL_STYLE = {"DEBUG": "dim", "INFO": "default", "WARNING": "yellow", "ERROR": "red",
               "CRITICAL": "bold red"}


def output_line(node_title: str, stream: str, text: str, level: str | None = None,
                time: str = "") -> str:
    """One line of a run's output, as rich markup: ``[time] node | [LEVEL] text``."""
    if stream == "log" and level:
        style = LEVEL_STYLE.get(level, "default")
        body = f"[{style}]{escape(level)} {escape(text)}[/]"
    else:
        style = {"stderr": "red", "patterns": "dim"}.get(stream, "default")
        body = f"[{style}]{escape(text)}[/]"
    stamp = f"{time} " if time else ""
    return f"[dim]{stamp}{escape(node_title)} |[/] {body}"


class LiveStatus:
    """In a terminal, under the scrolling output: a line per running node (elapsed time and
    rows written so far, from the engine) and the environment being built (uv's latest
    line); redrawn four times a second, gone when the work is done."""

    def __init__(self, running: Callable[[], list[Running]]) -> None:
        self.running = running
        self.environment: tuple[str, float] | None = None  # (uv's latest line, since)

    def __rich__(self) -> Text:
        from rich.text import Text

        from patterns.cli.render import number

        now = time.time()
        lines = Text()
        if self.environment is not None:
            line, since = self.environment
            lines.append(f"◌ building the environment {_elapsed(now - since)}: ", "cyan")
            lines.append(line + "\n", "dim")
        for run in sorted(self.running(), key=lambda r: r.started_at):
            lines.append(f"◌ {run.node_title}", "yellow")
            lines.append(f"  {_elapsed(now - run.started_at)}  "
                         f"{number(run.rows_written)} row(s) written\n", "dim")
        lines.rstrip()
        return lines


def _elapsed(seconds: float) -> str:
    """Elapsed time that does not flicker: tenths of a second, then minutes."""
    from patterns.cli.render import duration

    return f"{seconds:.1f}s" if seconds < 60 else duration(seconds)


class ConsoleReporter:
    """Prints each run's output as it happens, prefixed by its node; with :meth:`live`, in
    a terminal, a live status of the running nodes below it."""

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self._lock = threading.RLock()
        self.status: LiveStatus | None = None
        self._live: Live | None = None

    @contextlib.contextmanager
    def live(self, running: Callable[[], list[Running]]) -> Iterator[None]:
        """Show the live status while in the block, if the console is a terminal."""
        if not self.console.is_terminal:
            yield
            return
        from rich.live import Live

        self.status = LiveStatus(running)
        try:
            with Live(self.status, console=self.console, refresh_per_second=4, transient=True,
                      redirect_stdout=False, redirect_stderr=False) as self._live:
                yield
        finally:
            self.status = self._live = None

    def _redraw(self) -> None:
        """Show a change now (a run started, uv said something), not at the next tick."""
        if self._live is not None:
            self._live.refresh()

    def run_started(self, run: RunRecord) -> None:
        if self.status is not None:
            self.status.environment = None
            self._redraw()
        if not self.quiet:
            with self._lock:
                self.console.print(f"[cyan]▶ {escape(run.node_title)}[/] "
                                   f"[dim]({run.trigger}, run {run.short_id})[/]")

    def run_output(self, run: RunRecord, stream: str, line: str,
                   level: str | None = None) -> None:
        if self.quiet:
            return
        with self._lock:
            self.console.print(output_line(run.node_title, stream, line, level),
                               highlight=False, soft_wrap=True)

    def run_finished(self, run: RunRecord) -> None:
        style = STATUS_STYLE.get(run.status, "default")
        secs = f"{run.seconds:.2f}s" if run.seconds is not None else ""
        with self._lock:
            self.console.print(f"[{style}]■ {escape(run.node_title)} {run.status}[/] [dim]{secs}[/]")
            if run.status != "succeeded" and run.error:
                self.console.print(f"  [red]{escape(run.error)}[/]")

    def progress(self, line: str) -> None:
        if self.status is not None:
            since = self.status.environment[1] if self.status.environment else time.time()
            self.status.environment = (line, since)
            self._redraw()
        if not self.quiet:
            with self._lock:
                self.console.print(f"[dim]environment | {escape(line)}[/]", highlight=False,
                                   soft_wrap=True)

def print_runs(console: Console, runs: Sequence[RunRecord], *, title: str | None = None,
               started: bool = False, full: bool = False, full_hint: str | None = None) -> None:
    """Runs as a table (``patterns run``'s summary, ``patterns runs``): the columns that
    matter always whole, the error cut to fit or below the table."""
    from rich.text import Text

    from patterns.cli.render import Col, duration, number, print_table, when

    columns = [*((Col("started", "key"),) if started else ()), Col("node", "key"),
               Col("trigger"), Col("status", "key"), Col("read", "number"),
               Col("written", "number"), Col("time", "number"), Col("run", "key"),
               Col("error", "long")]
    rows = []
    for run in runs:
        error = Text((run.error or "").strip(), style="red")
        rows.append([*((when(run.started_at or run.queued_at),) if started else ()),
                     run.node_title, run.trigger,
                     Text(run.status, style=STATUS_STYLE.get(run.status, "default")),
                     number(sum((run.rows_read or {}).values())),
                     number(sum((run.rows_written or {}).values())), duration(run.seconds),
                     run.short_id, error])
    at = 1 if started else 0
    print_table(console, columns, rows, title=title, full=full, full_hint=full_hint,
                label=(len(columns) - 2, at))
