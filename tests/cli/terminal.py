"""Commands run in a pseudo-terminal of a given size, as a user sees them in a terminal
window: what the screen shows, colours taken out."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cli.conftest import COMMAND

_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclass(frozen=True)
class Screen:
    code: int
    #: Everything written, escapes taken out (a live display's redraws included).
    raw: str

    @property
    def lines(self) -> list[str]:
        """The lines as they stay on screen: a redrawn line (after a carriage return) shows
        its last drawing."""
        return [line.split("\r")[-1] for line in self.raw.split("\n")]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def in_terminal(*args: Any, columns: int, cwd: Path | None = None,
                env: dict[str, str] | None = None, timeout: float = 120) -> Screen:
    """Run ``patterns ARGS...`` with a terminal of ``columns`` columns as its stdin, stdout
    and stderr; return once it exits."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "CI")}
    full_env.update({"TERM": "xterm-256color", **(env or {})})
    proc = subprocess.Popen([*COMMAND, *map(str, args)], stdin=slave, stdout=slave,
                            stderr=slave, cwd=cwd, env=full_env, close_fds=True,
                            start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # (the terminal closed: every process using it is gone)
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            raise AssertionError(f"patterns {' '.join(map(str, args))} did not end in "
                                 f"{timeout}s: {b''.join(chunks).decode(errors='replace')}")
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
    text = b"".join(chunks).decode("utf-8", errors="replace").replace("\r\n", "\n")
    return Screen(code, _ESCAPES.sub("", text))
