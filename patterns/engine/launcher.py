"""Starting node processes and watching them: output capture, time limit, kill.

Each run is its own process, in its own process group, so a kill at the time limit also
kills whatever the node started. stdout and stderr are read line by line as they come,
stamped, masked for secrets and kept (up to :data:`MAX_LOG_BYTES` per run).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

MAX_LOG_BYTES = 2_000_000
STDERR_MARK = "\x1f"  # the node runner marks its stderr lines with this


@dataclass
class LogCapture:
    """A run's output: JSON lines ``[timestamp, stream, text]``, capped in size."""

    mask: Sequence[str] = ()
    lines: list[str] = field(default_factory=list)
    size: int = 0
    truncated: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, stream: str, text: str) -> str | None:
        for secret in self.mask:
            if secret and secret in text:
                text = text.replace(secret, "****")
        with self._lock:
            if self.size >= MAX_LOG_BYTES:
                if not self.truncated:
                    self.truncated = True
                    self._append("patterns", f"[output cut: more than {MAX_LOG_BYTES} bytes]")
                return None
            self._append(stream, text)
        return text

    def _append(self, stream: str, text: str) -> None:
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        line = json.dumps([stamp, stream, text])
        self.lines.append(line)
        self.size += len(line)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)


@dataclass(frozen=True)
class Exit:
    code: int | None
    timed_out: bool = False


class ProcessLauncher:
    """Runs each node in a fresh ``python -m patterns.sdk._runner`` process."""

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable

    def run(self, config: Mapping[str, object], cwd: Path, time_limit: float,
            capture: LogCapture, on_line: Callable[[str, str], None],
            on_start: Callable[[subprocess.Popen[bytes]], None] | None = None) -> Exit:
        env = dict(os.environ)
        env["PATTERNS_RUN"] = json.dumps(dict(config))
        env["PYTHONUNBUFFERED"] = "1"
        # The node process imports this very copy of patterns, installed or not.
        package_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_parent, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [self.python, "-m", "patterns.sdk._runner"], cwd=cwd, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        if on_start is not None:
            on_start(proc)
        readers = [
            threading.Thread(target=_pump, args=(proc.stdout, "stdout", capture, on_line),
                             daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, "stderr", capture, on_line),
                             daemon=True),
        ]
        for reader in readers:
            reader.start()
        timed_out = False
        try:
            proc.wait(timeout=time_limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(proc)
            proc.wait()
        # The node may have left children holding its pipes: end the whole group.
        kill_group(proc)
        for reader in readers:
            reader.join(timeout=5)
        return Exit(proc.returncode, timed_out)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _pump(pipe: IO[bytes] | None, stream: str, capture: LogCapture,
          on_line: Callable[[str, str], None]) -> None:
    if pipe is None:
        return
    for raw in iter(pipe.readline, b""):
        text = raw.decode("utf-8", errors="replace").rstrip("\n")
        which = stream
        if text.startswith(STDERR_MARK):  # the node's Python stderr, sent in order on stdout
            which, text = "stderr", text[1:]
        shown = capture.add(which, text)
        if shown is not None:
            on_line(which, shown)
    pipe.close()
