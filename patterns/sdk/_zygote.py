"""The warm worker: a pre-imported Python process that forks one child per node run.

Starting Python and importing pyarrow, Flight and pandas costs a node run several hundred
milliseconds. The engine instead starts this process once per environment
(``python -m patterns.sdk._zygote SOCKET [ENGINE_URI] [--isolate]``; ``SOCKET`` is a path
to listen on, or ``fd:N``, a listening socket it inherits); it imports all of that, then
waits. For each run the engine connects to ``SOCKET`` and sends one request line (JSON:
``cwd`` and ``env``) together with three or four descriptors (``SCM_RIGHTS``): the run's
stdout and stderr pipe ends, a pipe holding the run's config (its token among it), which
only the run's process reads, so the token never passes through the zygote's memory nor
into any environment, and for a run of the engine's own machine its control channel (see
:mod:`patterns.sdk._channel`). The zygote answers ``{"pid": N}`` at once and ``{"exit": CODE}`` when that
process ends, on the same connection; ``kill`` sent on it (or closing it) ends the run.

With ``--isolate`` (inside the sandbox, see :mod:`patterns.engine.sandbox`) the zygote and
every process it forks are not dumpable (no other process of the same user can read their
memory or environment, or attach to them), and each run's process is process 1 of a PID
namespace of its own, with no capability: it can signal no other run's processes, and when
it ends, or is killed, the kernel kills everything it started, ``setsid`` or not. For that
the zygote is itself process 1 of a user and PID namespace of its own (see
:func:`enter_worker_namespace`), which lets it make a PID namespace per run at the cost of
one plain fork.

The process that runs the node is forked *ahead of time*: the zygote keeps a **spare**, a
child that has already been forked, left the zygote's session and (given ``ENGINE_URI``)
connected to the engine's data plane, and now waits for a run. A request goes to the spare,
which becomes the node process (the pipes as fds 1 and 2, ``cwd`` and ``env`` as given) and
runs :func:`patterns.sdk._runner.main` exactly as a cold process would; then the zygote forks
the next spare. So neither the fork nor the connection is paid while a run waits. Without a
spare (one just handed out, or one that died) the zygote forks for the request directly.

gRPC must not be running in a process that forks, so the zygote only *imports* Flight; each
spare makes its own connection after it is forked. The zygote stays single-threaded (no
Python threads; the native allocator threads handle fork themselves), does ``gc.freeze()``
before serving so children share its pages (and their collections skip its objects), and ends, killing its children, when its stdin
closes (the engine went away).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import json
import os
import selectors
import signal
import socket
import sys
import warnings
from typing import Any

from patterns.sdk._prefault import PageLog, PageWatch, Ranges, common, populate

PRELOAD = ("pyarrow", "pyarrow.flight", "pyarrow.compute", "numpy", "pandas")
MAX_REQUEST = 4 << 20
TAKEN = b"k"  # a spare's answer to its run
#: How long a spare may take to answer (it may still be connecting to the engine).
HANDOFF_TIMEOUT = 5.0
READY = b"ready\n"
EXIT_MARK = "\x1d\x1dexit "  # (patterns.engine.launcher reads it)
#: Exit code of a child that failed before it could run the node (see the run's stderr).
EXIT_WORKER_FAILED = 70
KILL = b"kill\n"  # the engine's order to end a run, on the run's connection
MAX_CONFIG = 16 << 20
#: The first spares, and one in this many after them, report the pages their run wrote,
#: for later spares to copy ahead (see patterns.sdk._prefault). (Several at first: the
#: first run of a node is not like the others, it makes the node's tables.)
LEARN_FIRST, LEARN_EVERY = 4, 32
CLONE_NEWUSER, CLONE_NEWPID = 0x10000000, 0x20000000
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def preload() -> None:
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    # pyarrow sets up its IPC writer and type conversions on first use: do it here, once,
    # rather than in every run.
    import pyarrow as pa

    import patterns
    import patterns.sdk._convert
    import patterns.sdk._flight
    import patterns.sdk._runner
    import patterns.sdk._runtime
    import patterns.sdk.parameter
    import patterns.sdk.state
    import patterns.sdk.stream
    import patterns.sdk.table  # noqa: F401
    from patterns.sdk._convert import records_to_arrow

    table = records_to_arrow([{"n": 1, "x": 1.5, "s": "a", "d": {"k": [1]}}], "warmup")
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    from patterns.sdk._batch_records import warm_up

    warm_up()  # (a stream's records: orjson, the JSON loaders, Arrow's kernels)


class Zygote:
    def __init__(self, path: str, engine_uri: str | None, *, isolate: bool = False) -> None:
        self.engine_uri = engine_uri
        #: With ``isolate``: the zygote's own PID namespace (each run gets a new one).
        self.pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC) \
            if isolate else None
        if path.startswith("fd:"):
            self.listener = socket.socket(fileno=int(path[3:]))
        else:
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(path)
            self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.children: dict[int, socket.socket] = {}
        self.pending: dict[socket.socket, tuple[bytearray, list[int]]] = {}
        self.spare: tuple[int, socket.socket] | None = None
        #: The pages the last two runs that reported wrote; each spare copies them ahead.
        self.pages: Ranges = []
        self.reported: Ranges = []  # (the last report)
        self.logs: dict[int, PageLog] = {}  # by pid: the spares that will report
        self.spares = 0
        self.home_path = sys.path[0] if sys.path else ""

    # ------------------------------------------------------------------ the loop
    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_w.fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the engine, which ends us
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
        gc.collect()
        gc.freeze()
        self.fork_spare()
        os.write(sys.stdout.fileno(), READY)
        while True:
            for key, _ in self.selector.select():
                if key.data == "accept":
                    conn, _ = self.listener.accept()
                    self.pending[conn] = (bytearray(), [])
                    self.selector.register(conn, selectors.EVENT_READ, "request")
                    # (the engine sends its request as it connects: read it now rather
                    # than after another turn of the loop)
                    self.read_request(conn, socket.MSG_DONTWAIT)
                elif key.data == "request":
                    self.read_request(key.fileobj)  # type: ignore[arg-type]
                elif key.data == "run":
                    self.read_order(key.fileobj)  # type: ignore[arg-type]
                elif key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        while self.wake_r.recv(4096):
                            pass
                elif key.data == "stdin" and not os.read(sys.stdin.fileno(), 4096):
                    self.shutdown()
                    return
            self.reap()
            if self.spare is None:
                self.fork_spare()

    def read_request(self, conn: socket.socket, flags: int = 0) -> None:
        buffer, fds = self.pending[conn]
        try:
            data, new_fds, _, _ = socket.recv_fds(conn, 65536, 4, flags)
        except BlockingIOError:  # (nothing yet: the loop comes back when there is)
            return
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
        line = bytes(buffer).split(b"\n", 1)[0]
        try:
            if len(fds) not in (3, 4):
                raise ValueError(f"expected the run's stdout, stderr, config and (maybe) "
                                 f"control channel, got {len(fds)} descriptors")
            pid = self.hand_to_spare(line, fds) or self.fork_for(json.loads(line), fds, conn)
        except Exception as exc:  # a bad request or a failed fork: tell the engine, go on
            _send(conn, {"error": f"{type(exc).__name__}: {exc}"})
            conn.close()
            return
        finally:
            for fd in fds:
                os.close(fd)
        self.children[pid] = conn
        _send(conn, {"pid": pid})
        self.selector.register(conn, selectors.EVENT_READ, "run")

    def read_order(self, conn: socket.socket) -> None:
        """The engine wrote on a run's connection (``kill``) or closed it: end the run."""
        try:
            data = conn.recv(64)
        except OSError:
            data = b""
        if data and data != KILL:
            return
        self.selector.unregister(conn)
        pid = next((p for p, c in self.children.items() if c is conn), None)
        if pid is not None:
            _kill(pid)

    def drop(self, conn: socket.socket) -> None:
        _, fds = self.pending.pop(conn)
        for fd in fds:
            os.close(fd)
        self.selector.unregister(conn)
        conn.close()

    # ------------------------------------------------------------------ children
    def hand_to_spare(self, line: bytes, fds: list[int]) -> int | None:
        """Give the run to the waiting spare; None if there is none that can take it."""
        if self.spare is None:
            return None
        pid, channel = self.spare
        self.spare = None
        try:
            socket.send_fds(channel, [line + b"\n"], fds)
            # The spare says it has the run (a spare killed a moment ago may still take the
            # bytes, but never answers): without that, fork for the request instead.
            channel.settimeout(HANDOFF_TIMEOUT)
            if channel.recv(1) != TAKEN:
                raise ConnectionError("the spare did not take the run")
        except OSError:  # the spare died or hangs: kill what is left of it, fork afresh
            _kill(pid)
            return None
        finally:
            channel.close()
        return pid

    def fork(self) -> int:
        """``os.fork()``; with ``isolate``, the child is process 1 of a new PID namespace."""
        if self.pid_ns is None:
            return os.fork()
        _check(_libc().unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
        pid = -1
        try:
            pid = os.fork()
        finally:
            if pid != 0:  # (the zygote's next children go back to its own namespace)
                _check(_libc().setns(self.pid_ns, CLONE_NEWPID), "setns(CLONE_NEWPID)")
        if pid == 0:
            try:
                drop_capabilities()
            except BaseException:  # never into the zygote's loop, never with capabilities
                _print_exc()
                os._exit(EXIT_WORKER_FAILED)
        return pid

    def fork_spare(self) -> None:
        ours, theirs = socket.socketpair()
        learn = self.spares < LEARN_FIRST or self.spares % LEARN_EVERY == 0 or not self.pages
        log = PageLog() if learn else None
        self.spares += 1
        pid = self.fork()
        if pid == 0:
            ours.close()
            code = EXIT_WORKER_FAILED
            try:
                self.leave_zygote(keep=log)
                if log is None:
                    # The pages the run will write, copied now rather than on its path
                    # (one that reports copies none: it reports what it needed itself),
                    # and before gRPC's threads start (no other thread's TLB to flush).
                    populate(self.pages)
                connection = _preconnect(self.engine_uri)
                # (one that reports: what it owns now, every spare copies anyway)
                watch = PageWatch() if log is not None else None
                request, fds = _receive(theirs)
                theirs.close()
                # No request: retired unused, the zygote went away or ended.
                code = 0 if request is None else self.become_node(
                    request, fds, connection, None if log is None else (log, watch))
            except BaseException:  # nothing may escape into the zygote's loop
                _print_exc()
            os._exit(code)
        theirs.close()
        self.spare = (pid, ours)
        if log is not None:
            self.logs[pid] = log

    def fork_for(self, request: dict[str, Any], fds: list[int], conn: socket.socket) -> int:
        pid = self.fork()
        if pid == 0:
            code = EXIT_WORKER_FAILED
            try:
                conn.close()  # the engine must see EOF on it if the zygote dies
                self.leave_zygote()
                code = self.become_node(request, fds, None)
            except BaseException:  # nothing may escape into the zygote's loop
                _print_exc()
            os._exit(code)
        return pid

    def leave_zygote(self, keep: PageLog | None = None) -> None:
        """In a fresh child: drop the zygote's signals, sockets, selector and other runs'
        page logs (all but ``keep``, its own), and its session."""
        for log in self.logs.values():
            if log is not keep:
                log.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for conn in (self.listener, self.wake_r, self.wake_w, *self.children.values(),
                     *self.pending):
            conn.close()
        for _, received in self.pending.values():  # other runs' pipes, half-received
            for fd in received:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self.spare is not None:
            self.spare[1].close()
        if self.pid_ns is not None:
            os.close(self.pid_ns)
        self.selector.close()
        devnull = os.open(os.devnull, os.O_RDONLY)  # the zygote's stdin is the engine's pipe
        os.dup2(devnull, 0)
        os.close(devnull)
        os.setsid()

    def become_node(self, request: dict[str, Any], fds: list[int],
                    connection: Any, report: tuple[PageLog, Any] | None = None) -> int:
        # The zygote's objects stay frozen (gc.freeze): the node's collections never scan
        # the tens of thousands of objects its imports made, and their pages stay shared.
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        config = read_config(fds[2])
        for fd in fds[:3]:
            os.close(fd)
        if len(fds) > 3:  # the run's control channel (see patterns.sdk._channel)
            config["channel_fd"] = fds[3]
        cwd = request["cwd"]
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(request["env"])
        if sys.path and sys.path[0] == self.home_path:
            sys.path[0] = cwd  # as ``python -m`` started in cwd would have it
        from patterns.sdk import _runner

        code = _runner.main(connection, config)
        if report is not None:  # the pages the run wrote, for later spares to copy
            with contextlib.suppress(Exception):
                report[0].write(report[1].written())
        return _finish(code)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.spare is not None and self.spare[0] == pid:  # died waiting: replace it
                self.spare[1].close()
                self.spare = None
            log = self.logs.pop(pid, None)
            if log is not None:
                with contextlib.suppress(Exception):
                    report = log.read()
                    if report:
                        self.pages = common(self.reported, report) if self.reported \
                            else report
                        self.reported = report
                log.close()
            conn = self.children.pop(pid, None)
            if conn is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(conn)
                with contextlib.suppress(OSError):
                    _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
                conn.close()

    def shutdown(self) -> None:
        pids = list(self.children)
        if self.spare is not None:
            pids.append(self.spare[0])
            self.spare[1].close()
        for pid in pids:
            _kill(pid)
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _kill(pid: int) -> None:
    """Kill a child: its group (the run and what it started), and the process itself in
    case it has not made its own group yet (an isolated run's namespace goes with it)."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def not_dumpable() -> None:
    """No other process of this user may read this process's (or its children's) memory,
    environment or descriptors, or attach a debugger to it."""
    _check(_libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")


def enter_worker_namespace() -> None:
    """Make a user and a PID namespace and fork their process 1, which returns from here to
    be the zygote; this process waits for it and ends as it does (it never returns).

    The zygote holds every capability in its own user namespace, and no other: enough to make
    a PID namespace for each run (:meth:`Zygote.fork`), not to change the sandbox's mounts
    (they belong to the sandbox's user namespace, above). Each run drops them all. User IDs
    are left unmapped (node code sees itself as ``nobody``): the kernel still checks file
    access as the sandbox's user, so this changes nothing it can reach."""
    _check(_libc().unshare(CLONE_NEWUSER | CLONE_NEWPID), "unshare")
    pid = os.fork()
    if pid == 0:
        return
    os.closerange(3, 1 << 16)
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """No capability left, in any set, and none to gain by ``exec``."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    _check(_libc().capset(ctypes.byref(header), (_CapData * 2)()), "capset")
    _check(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def read_config(fd: int) -> dict[str, Any]:
    """The run's config (JSON), written by the engine into a pipe of its own."""
    data = bytearray()
    while chunk := os.read(fd, 65536):
        data.extend(chunk)
        if len(data) > MAX_CONFIG:
            raise ValueError("the run's config is too large")
    config: dict[str, Any] = json.loads(data)
    return config


def _preconnect(uri: str | None) -> tuple[str, Any] | None:
    if not uri:
        return None
    from patterns.sdk._flight import preconnect

    try:
        return uri, preconnect(uri)
    except Exception:  # the run connects itself, as a cold one would
        return None


def _receive(channel: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """The spare's run: one request line and its descriptors, acknowledged; None at
    EOF."""
    buffer, fds = bytearray(), []
    while b"\n" not in buffer:
        data, new_fds, _, _ = socket.recv_fds(channel, 65536, 4)
        fds.extend(new_fds)
        if not data:
            for fd in fds:
                os.close(fd)
            return None, []
        buffer.extend(data)
    channel.sendall(TAKEN)
    return json.loads(bytes(buffer).split(b"\n", 1)[0]), fds


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
    # Tell the engine the exit code now and let go of the output pipes: it need not wait
    # for this process's memory to be torn down to know the run is over.
    with contextlib.suppress(OSError):
        os.write(1, f"{EXIT_MARK}{code}\n".encode())
        os.close(1)
        os.close(2)
    return code


def _print_exc() -> None:
    import traceback

    with contextlib.suppress(Exception):
        traceback.print_exc()


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def main() -> int:
    warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
    args = [a for a in sys.argv[1:] if a != "--isolate"]
    isolate = "--isolate" in sys.argv[1:]
    if isolate:
        not_dumpable()  # (before: the process left waiting holds capabilities over the runs)
        enter_worker_namespace()
    preload()
    Zygote(args[0], args[1] if len(args) > 1 else None, isolate=isolate).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
