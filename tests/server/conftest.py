"""The real server, as a user starts it: `patterns serve APP --port 0` in a subprocess,
driven over HTTP on loopback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

COMMAND = [sys.executable, "-m", "patterns.cli.main"]


def sandbox_env() -> dict[str, str]:
    """Served nodes run in the sandbox (the default) wherever it can start, and always in CI;
    elsewhere the server tests serve unsandboxed rather than all fail (tests/engine/
    test_sandbox.py says why it skipped)."""
    from patterns.engine.sandbox import available

    return {} if available() or os.environ.get("CI") else {"PATTERNS_NO_SANDBOX": "1"}


def write_app(root: Path, graph: str, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "graph.yml").write_text(textwrap.dedent(graph))
    for name, source in files.items():
        (root / name).write_text(textwrap.dedent(source))
    return root


class Server:
    """A running `patterns serve`; ``url``, ``api(path)``, and its output so far. ``http``
    is a session holding the server's token, taken from the login URL it prints at start
    (as a user copies it); plain ``requests`` calls have no token."""

    def __init__(self, roots: list[Path], *args: str, env: dict[str, str] | None = None) -> None:
        self.roots = roots
        self.args = args
        self.env = {**os.environ, **sandbox_env(), **(env or {})}
        self.output: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.token = ""
        self.http = requests.Session()
        self.start()

    def start(self) -> None:
        self.output = []
        self.proc = subprocess.Popen([*COMMAND, "serve", *map(str, self.roots), "--port", "0",
                                      *self.args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=self.env)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        deadline = time.time() + 60
        while time.time() < deadline:
            found = next((m for line in list(self.output)
                          if (m := re.search(r"on (http://\S+)", line))), None)
            login = next((m for line in list(self.output)
                          if (m := re.search(r"/login\?token=(\S+)", line))), None)
            if found and login:
                self.url, self.token = found.group(1), login.group(1)
                self.http.headers["Authorization"] = f"Bearer {self.token}"
                return
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise AssertionError(f"the server did not start:\n{''.join(self.output)}")
            time.sleep(0.05)
        raise AssertionError(f"the server did not start in time:\n{''.join(self.output)}")

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.output.append(line)

    def api(self, path: str) -> str:
        return f"{self.url}/api/v1{path}"

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.http.get(self.api(path), timeout=30, **kwargs)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.http.post(self.api(path), **kwargs)

    def wait_for(self, check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
        """:func:`tests.conftest.wait_for`, with the server's output when it times out."""
        from tests.conftest import wait_for

        try:
            return wait_for(check, what or str(check), timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{''.join(self.output)}") from None

    def runs(self, app: str, node: str | None = None) -> list[dict[str, Any]]:
        query = f"?node={node}" if node else ""
        return list(self.get(f"/apps/{app}/runs{query}"))

    def rows(self, app: str, table: str) -> list[dict[str, Any]]:
        response = self.http.get(self.api(f"/apps/{app}/tables/{table}/rows?limit=10000"),
                                timeout=30)
        if response.status_code == 404:
            return []
        assert response.status_code == 200, response.text
        return list(response.json()["rows"])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(*roots: Path, args: tuple[str, ...] = (), env: dict[str, str] | None = None
              ) -> Server:
        server = Server(list(roots), *args, env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()
