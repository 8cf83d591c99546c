"""The engine's side of a warm worker (:mod:`patterns.sdk._zygote`): starting it, in the
sandbox or not, asking it for a run's process, and ending that process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from patterns.engine.sandbox import Sandbox

log = logging.getLogger("patterns.engine")


class WarmWorkerError(Exception):
    """The warm worker could not start a run; the launcher falls back to a cold start."""


def node_env() -> dict[str, str]:
    """The environment of a node process: the engine's, with this copy of patterns first
    on its path (nothing of the run: its config comes by :func:`_config_pipe`)."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    # glibc's malloc, as a long stream needs it: gRPC's threads receive each batch into
    # arenas of their own, and the main thread frees it there, so every arena's heap grew
    # with what it had once held (up to 16 arenas on 2 cores); and the mmap threshold, left
    # to move, rises once a big block is freed, so later big blocks (a batch's column lists
    # and JSON text) came from those heaps too. Two arenas, and the thresholds fixed at
    # glibc's defaults (128 KB), keep a node's peak where the first batches put it
    # (consuming 5M rows: 327 MB before, 251 MB after; bench/RESULTS.md).
    env.setdefault("MALLOC_ARENA_MAX", "2")
    env.setdefault("MALLOC_TRIM_THRESHOLD_", "131072")
    # Arrow's buffers from that same malloc, not mimalloc (pyarrow's default): a node is a
    # fresh process, and mimalloc's first use of each segment cost it as much system time
    # as the conversion itself (1M records: 1.3-1.8 s of page clearing in the kernel on
    # top of 1.5 s; the system allocator: 0.12 s), once per run (bench/RESULTS.md).
    env.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    # The node process imports this very copy of patterns, installed or not.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    return env


PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


class WarmWorker:
    """One warm worker (:mod:`patterns.sdk._zygote`) for one Python environment."""

    START_TIMEOUT = 60.0

    def __init__(self, python: str, engine_uri: str | None = None,
                 sandbox: Sandbox | None = None) -> None:
        self.python = python
        self.sandbox = sandbox
        self._dir = tempfile.mkdtemp(prefix="patterns-worker-")
        self.path = os.path.join(self._dir, "socket")
        env = node_env()
        uri = [engine_uri] if engine_uri else []
        if sandbox is None:
            self.proc = subprocess.Popen(
                [python, "-m", "patterns.sdk._zygote", self.path, *uri],
                cwd=self._dir, env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True)
        else:
            # The socket is made out here and handed in: inside, no path leads to it, so
            # node code cannot ask the worker for anything.
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
                listener.bind(self.path)
                listener.listen(64)
                fd = listener.fileno()
                command = sandbox.command(python, ["-m", "patterns.sdk._zygote", f"fd:{fd}",
                                                   *uri, "--isolate"])
                self.proc = subprocess.Popen(
                    command, env=sandbox.env(env), pass_fds=(fd,),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    start_new_session=True)
        self._ready = threading.Event()
        self._error: str | None = None
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        if self.proc.stdout.readline() != b"ready\n":
            self.proc.wait()
            tail = self.proc.stderr.read().decode(errors="replace").strip().splitlines()[-5:]
            self._error = (f"the warm worker for {self.python} did not start "
                           f"(exit code {self.proc.returncode}): " + " / ".join(tail))
            self._ready.set()
            return
        self._ready.set()
        for raw in self.proc.stderr:  # the worker's own complaints, never a node's output
            log.warning("warm worker: %s", raw.decode(errors="replace").rstrip())

    def alive(self) -> bool:
        return self.proc.poll() is None and self._error is None

    def spawn(self, cwd: Path, env: Mapping[str, str], fds: tuple[int, ...]) -> _WarmChild:
        """Fork the run's process: ``fds`` are its stdout, stderr, config pipe and (maybe)
        control channel."""
        if not self._ready.wait(self.START_TIMEOUT):
            raise WarmWorkerError(f"the warm worker for {self.python} is not ready after "
                                  f"{self.START_TIMEOUT:g} s")
        if self._error is not None:
            raise WarmWorkerError(self._error)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.settimeout(30)
            conn.connect(self.path)
            request = json.dumps({"cwd": str(cwd), "env": dict(env)}).encode() + b"\n"
            socket.send_fds(conn, [request], list(fds))
            messages = _Messages(conn)
            reply = messages.read(timeout=30)
        except OSError as exc:
            conn.close()
            raise WarmWorkerError(f"the warm worker for {self.python} did not answer: "
                                  f"{exc}") from None
        if reply is None or "pid" not in reply:
            conn.close()
            why = reply.get("error") if reply else "it closed the connection"
            raise WarmWorkerError(f"the warm worker for {self.python} could not fork: {why}")
        return _WarmChild(messages, int(reply["pid"]), isolated=self.sandbox is not None)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the worker ends, and kills its runs, at EOF
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            kill_group(self.proc.pid)
            self.proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)


class _WarmChild:
    def __init__(self, messages: _Messages, pid: int, *, isolated: bool = False) -> None:
        self.messages = messages
        self.conn = messages.conn
        self.pid = pid
        self.isolated = isolated
        self.code: int | None = None
        #: The engine's end of the run's control channel, if it has one.
        self.channel: socket.socket | None = None

    def kill(self, running: bool) -> None:
        if not self.isolated:
            kill_group(self.pid, running=running)
            return
        # Its pid is the worker's (inside the sandbox's PID namespace): the worker kills it,
        # and the kernel everything in the run's own namespace.
        with contextlib.suppress(OSError):
            self.conn.sendall(b"kill\n")

    def exit_fd(self) -> int | None:
        return self.conn.fileno()  # (its exit is told on it, then it is closed)

    def release(self) -> None:
        self.conn.close()

    def wait(self, timeout: float | None) -> int | None:
        try:
            message = self.messages.read(timeout)
        except TimeoutError:
            return None
        except OSError:
            message = None
        self.conn.close()
        if message is None or "exit" not in message:
            # The warm worker went away and cannot tell: make sure the run is over (in a
            # sandbox, it is: the sandbox ends with its worker).
            if not self.isolated:
                kill_group(self.pid)
            return -signal.SIGKILL
        return int(message["exit"])


class _Messages:
    """The JSON lines the warm worker sends on a run's connection (its pid, then its exit),
    read as they come: what arrives past one line is kept for the next (one ``recv`` per
    message, not one per byte)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self._buffer = bytearray()

    def read(self, timeout: float | None) -> dict[str, Any] | None:
        """The next message; None if the connection closes first."""
        self.conn.settimeout(timeout)
        while b"\n" not in self._buffer:
            chunk = self.conn.recv(4096)
            if not chunk:
                return None
            self._buffer.extend(chunk)
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        message: dict[str, Any] = json.loads(line)
        return message


def kill_group(pid: int, *, running: bool = False) -> None:
    """Kill the run's process group (the run and whatever it started). ``running``: the
    process has not ended, so if it has no group yet, kill it alone."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        if running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    except PermissionError:
        pass
