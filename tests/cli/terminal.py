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
import threading
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
          controlling: bool = False) -> tuple[subprocess.Popen[bytes], int]:
    """``patterns ARGS...`` with a terminal of ``columns`` columns as its stdin, stdout and
    stderr (and, ``controlling``, as its controlling terminal: Ctrl-C typed there is a
    SIGINT, a password prompt reads it); the process and the terminal's other end."""

    def controlling_terminal() -> None:  # (in the child)
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "CI")}
    full_env.update({"TERM": "xterm-256color", **(env or {})})
    proc = subprocess.Popen([*COMMAND, *map(str, args)], stdin=slave, stdout=slave,
                            stderr=slave, cwd=cwd, env=full_env, close_fds=True,
                            start_new_session=not controlling,
                            preexec_fn=controlling_terminal if controlling else None)
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
    (answers a question, presses Ctrl-C); what it prints is collected as it comes."""

    def __init__(self, *args: object, cwd: Path | None = None,
                 env: dict[str, str] | None = None, columns: int = 80) -> None:
        self.proc, self.fd = spawn(args, columns, cwd, {"NO_COLOR": "1", **(env or {})},
                                   controlling=True)
        self._output = ""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # (the terminal closed: every process using it is gone)
                return
            if not chunk:
                return
            with self._lock:
                self._output += chunk.decode(errors="replace")

    @property
    def seen(self) -> str:
        """Everything printed so far, escapes taken out."""
        with self._lock:
            return _ESCAPES.sub("", self._output.replace("\r\n", "\n"))

    def expect(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            assert self.proc.poll() is None or text in self.seen, \
                f"ended without {text!r}:\n{self.seen}"
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.seen}"
            time.sleep(0.05)
        return self.seen

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def ctrl_c(self) -> None:
        self.send("\x03")

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(timeout=5)  # (what it wrote last drains from the terminal)
        os.close(self.fd)
        return code
