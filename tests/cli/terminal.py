"""A command run in a pseudo-terminal, for tests of what a user at a terminal sees."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

from tests.cli.conftest import COMMAND


class Terminal:
    """A command run in a pseudo-terminal, as a user at a terminal runs it."""

    def __init__(self, *args: object, cwd: Path, env: dict[str, str] | None = None) -> None:
        leader, follower = pty.openpty()
        self.fd = leader
        self.proc = subprocess.Popen([*COMMAND, *map(str, args)], cwd=cwd, stdin=follower,
                                     stdout=follower, stderr=follower, close_fds=True,
                                     env={**os.environ, "COLUMNS": "80", "NO_COLOR": "1",
                                          **(env or {})})
        os.close(follower)
        self.seen = ""

    def expect(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            assert time.monotonic() < deadline, f"no {text!r} in {self.seen!r}"
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.fd, 4096).decode(errors="replace")
                except OSError:  # the command ended
                    assert text in self.seen, f"no {text!r} in {self.seen!r}"
        return self.seen

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self) -> int:
        code = self.proc.wait(timeout=60)
        os.close(self.fd)
        return code
