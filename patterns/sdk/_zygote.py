"""The warm worker: a pre-imported Python process that forks one child per node run.

Starting Python and importing pyarrow, Flight and pandas costs a node run several hundred
milliseconds. The engine instead starts this process once per environment
(``python -m patterns.sdk._zygote SOCKET``); it imports all of that, then waits. For each run
the engine connects to ``SOCKET`` and sends one request line (JSON: ``cwd`` and ``env``)
together with the run's stdout and stderr pipe ends (``SCM_RIGHTS``). The zygote forks; the
child becomes the node process (own session and process group, the pipes as fds 1 and 2,
``cwd`` and ``env`` as given) and runs :func:`patterns.sdk._runner.main` exactly as a cold
process would. The zygote answers ``{"pid": N}`` at once and ``{"exit": CODE}`` when the child
ends, on the same connection.

gRPC must not be running in a process that forks, so the zygote only *imports* Flight; each
child makes its own client. The zygote stays single-threaded (no Python threads; the native
allocator threads handle fork themselves), collects ``gc.freeze()`` before serving so
children share its pages, and ends, killing its children, when its stdin closes (the engine
went away).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import sys
import warnings
from typing import Any

PRELOAD = ("pyarrow", "pyarrow.flight", "pyarrow.compute", "numpy", "pandas")
MAX_REQUEST = 4 << 20
READY = b"ready\n"


def preload() -> None:
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    import patterns
    import patterns.sdk._convert
    import patterns.sdk._flight
    import patterns.sdk._runner
    import patterns.sdk._runtime
    import patterns.sdk.parameter
    import patterns.sdk.state
    import patterns.sdk.stream
    import patterns.sdk.table  # noqa: F401


class Zygote:
    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.children: dict[int, socket.socket] = {}
        self.pending: dict[socket.socket, tuple[bytearray, list[int]]] = {}
        self.home_path = sys.path[0] if sys.path else ""

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_w.fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the engine, which ends us
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
        gc.collect()
        gc.freeze()
        os.write(sys.stdout.fileno(), READY)
        while True:
            for key, _ in self.selector.select():
                if key.data == "accept":
                    conn, _ = self.listener.accept()
                    self.pending[conn] = (bytearray(), [])
                    self.selector.register(conn, selectors.EVENT_READ, "request")
                elif key.data == "request":
                    self.read_request(key.fileobj)  # type: ignore[arg-type]
                elif key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        while self.wake_r.recv(4096):
                            pass
                    self.reap()
                elif key.data == "stdin" and not os.read(sys.stdin.fileno(), 4096):
                    self.shutdown()
                    return
            self.reap()

    def read_request(self, conn: socket.socket) -> None:
        buffer, fds = self.pending[conn]
        try:
            data, new_fds, _, _ = socket.recv_fds(conn, 65536, 4)
        except OSError:
            data, new_fds = b"", []
        fds.extend(new_fds)
        buffer.extend(data)
        if not data or len(buffer) > MAX_REQUEST:
            self.drop(conn)
            return
        if b"\n" not in buffer:
            return
        self.selector.unregister(conn)
        del self.pending[conn]
        try:
            request = json.loads(bytes(buffer).split(b"\n", 1)[0])
            pid = self.fork(request, fds, conn)
        except Exception as exc:  # a bad request or a failed fork: tell the engine, go on
            for fd in fds:
                os.close(fd)
            _send(conn, {"error": f"{type(exc).__name__}: {exc}"})
            conn.close()
            return
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        _send(conn, {"pid": pid})

    def drop(self, conn: socket.socket) -> None:
        _, fds = self.pending.pop(conn)
        for fd in fds:
            os.close(fd)
        self.selector.unregister(conn)
        conn.close()

    def fork(self, request: dict[str, Any], fds: list[int], conn: socket.socket) -> int:
        if len(fds) != 2:
            raise ValueError(f"expected the run's stdout and stderr, got {len(fds)} descriptors")
        pid = os.fork()
        if pid == 0:
            try:
                conn.close()  # the engine must see EOF on it if the zygote dies
                code = self.become_node(request, fds)
            except BaseException:  # nothing may escape into the zygote's loop
                import traceback

                with contextlib.suppress(Exception):
                    traceback.print_exc()
                code = 70
            os._exit(code)
        return pid

    def become_node(self, request: dict[str, Any], fds: list[int]) -> int:
        # Leave the zygote behind: its signals, sockets and selector belong to it alone.
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for conn in (self.listener, self.wake_r, self.wake_w, *self.children.values(),
                     *self.pending):
            conn.close()
        self.selector.close()
        gc.unfreeze()
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in (devnull, *fds):
            os.close(fd)
        cwd = request["cwd"]
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(request["env"])
        if sys.path and sys.path[0] == self.home_path:
            sys.path[0] = cwd  # as ``python -m`` started in cwd would have it
        from patterns.sdk import _runner

        code = _runner.main()
        return _finish(code)

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                with contextlib.suppress(OSError):
                    _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
                conn.close()

    def shutdown(self) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _finish(code: int) -> int:
    """What interpreter shutdown would do before the child leaves with ``os._exit``: wait
    for the node's non-daemon threads, run its ``atexit`` functions, flush output."""
    import atexit
    import threading

    with contextlib.suppress(Exception):
        threading._shutdown()  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    return code


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def main() -> int:
    warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
    preload()
    Zygote(sys.argv[1]).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
