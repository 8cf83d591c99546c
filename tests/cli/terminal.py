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


def spawn(args: tuple[Any, ...], columns: int, cwd: Path | None, env: dict[str, str] | None,
          new_session: bool = True) -> tuple[subprocess.Popen[bytes], int]:
    """``patterns ARGS...`` with a terminal of ``columns`` columns as its stdin, stdout and
    stderr; the process and the terminal's other end."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "CI")}
    full_env.update({"TERM": "xterm-256color", **(env or {})})
    proc = subprocess.Popen([*COMMAND, *map(str, args)], stdin=slave, stdout=slave,
                            stderr=slave, cwd=cwd, env=full_env, close_fds=True,
                            start_new_session=new_session)
    os.close(slave)
    return proc, master


def in_terminal(*args: Any, columns: int, cwd: Path | None = None,
                env: dict[str, str] | None = None, timeout: float = 120) -> Screen:
    """Run ``patterns ARGS...`` in a terminal of ``columns`` columns; return once it exits."""
    proc, master = spawn(args, columns, cwd, env)
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


class Terminal:
    """A command in a pseudo-terminal that a test talks to, as a user at a terminal does
    (answers a question, presses Ctrl-C)."""

    def __init__(self, *args: object, cwd: Path, env: dict[str, str] | None = None,
                 columns: int = 80) -> None:
        self.proc, self.fd = spawn(args, columns, cwd, {"NO_COLOR": "1", **(env or {})},
                                   new_session=False)
        self.seen = ""

    def expect(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            assert time.monotonic() < deadline, f"no {text!r} in {self.seen!r}"
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.seen += _ESCAPES.sub("", os.read(self.fd, 4096).decode(errors="replace"))
                except OSError:  # the command ended
                    assert text in self.seen, f"no {text!r} in {self.seen!r}"
        return self.seen

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self) -> int:
        code = self.proc.wait(timeout=60)
        os.close(self.fd)
        return code
