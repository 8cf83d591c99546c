"""Starting node processes on this machine and watching them: output capture, time limit,
kill. :class:`ProcessLauncher` is the engine's local
:class:`~patterns.engine.launching.Launcher` (and what a Dask worker uses to start the runs it
is given, see :mod:`patterns.engine.dask_task`).

Each run is its own process, in its own session and process group, so a kill at the time
limit also kills whatever the node started (unsandboxed, a process that leaves the group with
``setsid`` escapes it; in the sandbox, nothing does). The process is forked from a warm worker (see
:mod:`patterns.sdk._zygote`) kept per Python environment, so a run does not pay for starting
Python and importing pyarrow; if the warm worker cannot be had, the run starts a fresh
``python -m patterns.sdk._runner`` instead. stdout and stderr are read line by line as they
come, stamped, masked for secrets and kept (up to :data:`MAX_LOG_BYTES` per run).

The run's config (the data plane's address and the run's token) goes to the node process in
a pipe of its own, never in its environment. With a :class:`~patterns.engine.sandbox.Sandbox`
the warm worker (or a cold run) is started inside bubblewrap, each run in a PID namespace of
its own: a run is killed through its worker, which kills the whole namespace.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from patterns.engine.run_threads import RUN_THREADS
from patterns.engine.warm_worker import WarmWorker, WarmWorkerError, kill_group, node_env

if TYPE_CHECKING:
    from patterns.engine.launching import RunRequest
    from patterns.engine.sandbox import Sandbox

__all__ = ["Exit", "LogCapture", "ProcessLauncher", "WarmWorkerError",
           "kill_group", "node_env", "sandboxed_launcher"]

MAX_LOG_BYTES = 2_000_000
STDERR_MARK = "\x1f"  # the node runner marks its stderr lines with this
LOG_MARK = "\x1e"  # and the lines of logging records, with their level
EXIT_MARK = "\x1d\x1dexit "  # a forked run's last line: its exit code
_EXIT_MARK = EXIT_MARK.encode()
#: Seconds a run that has ended is given to close its output pipes before its process group
#: is killed (a child it left running may hold them open).
PIPES_CLOSE_SECONDS = 0.05

#: Called with each output line as it comes: stream, text, level (for a logging record).
OnLine = Callable[[str, str, "str | None"], None]

log = logging.getLogger("patterns.engine")


@dataclass
class LogCapture:
    """A run's output: JSON lines ``[timestamp, stream, text]`` (``[..., level]`` for a
    ``logging`` record, stream ``"log"``), capped in size. Each line also goes to ``sink``
    as it is made (the live log that ``patterns logs -f`` follows)."""

    #: Applied to each line before it is kept or shown (see :mod:`patterns.engine.masking`).
    mask: Callable[[str], str] | None = None
    sink: Callable[[str], None] | None = None
    lines: list[str] = field(default_factory=list)
    size: int = 0
    truncated: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, stream: str, text: str, level: str | None = None) -> str | None:
        with self._lock:
            if self.size >= MAX_LOG_BYTES:
                if not self.truncated:
                    self.truncated = True
                    self._append("patterns", f"[output cut: more than {MAX_LOG_BYTES} bytes]")
                return None
            if self.mask is not None:  # (only what is kept: a flood past the cap costs none)
                text = self.mask(text)
            self._append(stream, text, level)
        return text

    def _append(self, stream: str, text: str, level: str | None = None) -> None:
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        line = json.dumps([stamp, stream, text] if level is None else [stamp, stream, text, level])
        self.lines.append(line)
        self.size += len(line)
        if self.sink is not None:
            self.sink(line)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)


@dataclass(frozen=True)
class Exit:
    code: int | None
    timed_out: bool = False
    #: Why the launcher could not carry the run out (its machine was lost, no worker left):
    #: the run's error. None when the node's process ran and ended by itself or was stopped.
    error: str | None = None


class _Child(Protocol):
    pid: int

    def wait(self, timeout: float | None) -> int | None:
        """The exit code (negative for a signal), or None if still running at ``timeout``."""

    def kill(self, running: bool) -> None:
        """End the run and everything it started (``running``: it has not ended itself)."""

    def exit_fd(self) -> int | None:
        """A descriptor that becomes readable when the run's process has ended (None: the
        watcher asks :meth:`wait` now and then instead)."""

    def release(self) -> None:
        """Let go of what watching the run held, once the run is over."""


class ProcessLauncher:
    """Starts each node run in its own process: forked from the warm worker of its Python
    environment, or as a fresh ``python -m patterns.sdk._runner`` when ``warm`` is off
    (``PATTERNS_WARM_WORKERS=0``) or the warm worker is unavailable. ``sandbox``: run node
    code inside it (see :mod:`patterns.engine.sandbox`)."""

    def __init__(self, python: str | None = None, *, warm: bool | None = None,
                 sandbox: Sandbox | None = None) -> None:
        self.python = python or sys.executable
        if warm is None:
            warm = os.environ.get("PATTERNS_WARM_WORKERS", "1") != "0" and hasattr(os, "fork")
        self.warm = warm
        self.sandbox = sandbox
        self._workers: dict[str, WarmWorker] = {}
        self._children: dict[int, _Child] = {}  # running, by the pid on_start was told
        self._runs: dict[str, int | None] = {}  # run id -> its pid (None: still starting)
        self._cancelled: set[str] = set()  # asked to stop before they had a process
        self._lock = threading.Lock()
        self._channel: Callable[[socket.socket], None] | None = None

    def serve_channels(self, serve: Callable[[socket.socket], None]) -> None:
        """Give each run forked by a warm worker a control channel (see
        :mod:`patterns.engine.channel`) whose engine end ``serve`` answers, on a thread of its
        own, until the run closes it. Set by the engine for its own runs, before
        :meth:`prepare`: their spare processes then make no Flight connection ahead of time
        (a run connects when it first reads)."""
        self._channel = serve

    def prepare(self, engine_uri: str, python: str | None = None) -> None:
        """Start the warm worker for ``python`` now, in the background, so that the first
        run does not wait for its imports; its spare processes connect to ``engine_uri``
        (the data plane) ahead of their runs."""
        if self.warm:
            self._worker(python or self.python, None if self._channel else engine_uri)

    def run(self, request: RunRequest) -> Exit:
        """Carry out ``request`` in a process of this machine (see :meth:`run_process`)."""
        run_id = request.run_id
        with self._lock:
            self._runs[run_id] = None

        def started(pid: int) -> None:
            with self._lock:
                self._runs[run_id] = pid
                cancelled = run_id in self._cancelled
            if request.on_start is not None:
                request.on_start()
            if cancelled:  # asked to stop before it had a process
                self.kill(pid)

        try:
            return self.run_process(request.config, request.app_root, request.time_limit,
                                    request.capture, request.on_line, on_start=started,
                                    python=request.python)
        finally:
            with self._lock:
                self._runs.pop(run_id, None)
                self._cancelled.discard(run_id)

    def cancel(self, run_id: str) -> None:
        with self._lock:
            if run_id not in self._runs:
                return
            pid = self._runs[run_id]
            if pid is None:
                self._cancelled.add(run_id)
        if pid is not None:
            self.kill(pid)

    def kill(self, pid: int) -> None:
        """End the running run whose process is ``pid`` (as ``on_start`` was told) and
        everything it started."""
        with self._lock:
            child = self._children.get(pid)
        if child is not None:
            child.kill(running=True)
        elif self.sandbox is None:  # (a sandboxed pid means nothing out here)
            kill_group(pid, running=True)

    def close(self) -> None:
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.close()

    def run_process(self, config: Mapping[str, object], cwd: Path, time_limit: float,
                    capture: LogCapture, on_line: OnLine,
                    on_start: Callable[[int], None] | None = None,
                    python: str | None = None) -> Exit:
        """Run the node process that ``config`` describes in ``cwd`` to its end, killing
        its process group at ``time_limit``; ``on_start(pid)`` once it has started."""
        python = python or self.python
        env = node_env()
        if self.sandbox is not None:
            env = self.sandbox.env(env)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            child = self._start(python, cwd, env, json.dumps(dict(config)).encode(), out_w,
                                err_w)
        except BaseException:
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        with self._lock:
            self._children[child.pid] = child
        try:
            return self._watch(child, time_limit, capture, on_line, on_start, out_r, err_r)
        finally:
            with self._lock:
                self._children.pop(child.pid, None)

    def _watch(self, child: _Child, time_limit: float, capture: LogCapture, on_line: OnLine,
               on_start: Callable[[int], None] | None, out_r: int, err_r: int) -> Exit:
        """Read the run's output and wait for its end, on this one thread (a selector over
        its two pipes and the descriptor that tells its exit): a run needs no thread of its
        own for either, and no hand-over between threads on its path."""
        if on_start is not None:
            on_start(child.pid)
        ending = _Ending()
        outputs = {out_r: _Output("stdout", capture, on_line, ending),
                   err_r: _Output("stderr", capture, on_line, ending)}
        selector = selectors.DefaultSelector()
        exit_fd = child.exit_fd()
        try:
            for fd in outputs:
                os.set_blocking(fd, False)
                selector.register(fd, selectors.EVENT_READ)
            if exit_fd is not None:
                selector.register(exit_fd, selectors.EVENT_READ)
            watch = _Watch(child, selector, outputs, exit_fd, ending)
            # The run is over when its process says so (a forked run announces its exit code
            # on stdout before its address space is torn down) or when it has ended.
            timed_out = not watch.until(ending.done.is_set, time_limit)
            if timed_out:
                child.kill(running=True)
                watch.until(ending.done.is_set, 30)
            else:
                # A forked run closes its output pipes right after announcing its exit:
                # read them to their end before killing its group. Killed between the two,
                # it would close them only once the kernel had torn down its memory (the
                # warm worker's 125 MB: 1-3 ms on the run's path).
                watch.until(watch.pipes_closed, PIPES_CLOSE_SECONDS)
            # The node may have left children holding its pipes: end them all.
            child.kill(running=False)
            channel = getattr(child, "channel", None)
            if channel is not None:  # (its thread ends, whoever still holds the run's end)
                with contextlib.suppress(OSError):
                    channel.shutdown(socket.SHUT_RDWR)
            watch.until(watch.pipes_closed, 5)
        finally:
            selector.close()
            for fd, output in outputs.items():
                output.end()
                os.close(fd)
            child.release()
        return Exit(ending.code, timed_out)

    def _start(self, python: str, cwd: Path, env: dict[str, str], config: bytes, out_w: int,
               err_w: int) -> _Child:
        if self.warm:
            config_r = _config_pipe(config)
            channel = socket.socketpair() if self._channel is not None else None
            try:
                uri = None if channel else json.loads(config).get("uri")
                fds = (out_w, err_w, config_r, *([channel[1].fileno()] if channel else []))
                child = self._worker(python, uri).spawn(cwd, env, fds)
            except WarmWorkerError as exc:
                log.warning("starting the run without a warm worker: %s", exc)
                self._discard(python)
                if channel is not None:
                    channel[0].close()
            else:
                if channel is not None:
                    assert self._channel is not None
                    child.channel = channel[0]
                    RUN_THREADS.start(functools.partial(self._channel, channel[0]))
                return child
            finally:
                os.close(config_r)
                if channel is not None:
                    channel[1].close()
        command = [python, "-m", "patterns.sdk._runner"]
        if self.sandbox is not None:
            command = self.sandbox.command(python, command[1:], per_run=True)
        config_r = _config_pipe(config)
        try:
            proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=config_r, stdout=out_w,
                                    stderr=err_w, start_new_session=True)
        finally:
            os.close(config_r)
        return _ColdChild(proc)

    def _worker(self, python: str, engine_uri: str | None) -> WarmWorker:
        with self._lock:
            worker = self._workers.get(python)
            if worker is None or not worker.alive():
                worker = self._workers[python] = WarmWorker(python, engine_uri, self.sandbox)
            return worker

    def _discard(self, python: str) -> None:
        with self._lock:
            worker = self._workers.pop(python, None)
        if worker is not None:
            worker.close()


def sandboxed_launcher(app_root: Path, extra_roots: tuple[Path, ...] = ()) -> ProcessLauncher:
    """A launcher that runs the node code of the app at ``app_root`` in the OS sandbox
    (``extra_roots``: the folders of the components it uses, read-only too)."""
    from patterns.engine.sandbox import Sandbox

    return ProcessLauncher(sandbox=Sandbox(app_root, extra_roots))


def _config_pipe(config: bytes) -> int:
    """A pipe holding ``config`` and then its end; the read end, for the run's process."""
    read, write = os.pipe()
    if len(config) < 60_000:  # fits in the pipe: no need to wait for a reader
        os.write(write, config)
        os.close(write)
        return read

    def feed() -> None:
        with contextlib.suppress(OSError), os.fdopen(write, "wb") as pipe:
            pipe.write(config)

    threading.Thread(target=feed, daemon=True, name="patterns-run-config").start()
    return read


class _ColdChild:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # (Linux 5.3 and later)
            self._pidfd = os.pidfd_open(proc.pid)

    def exit_fd(self) -> int | None:
        return self._pidfd

    def release(self) -> None:
        # Its group was killed: collect the process (a node that escaped the group by
        # ``setsid`` is not this process, which ends with the group).
        self.wait(5)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def wait(self, timeout: float | None) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self, running: bool) -> None:
        # (A sandboxed cold run is bwrap, whose namespace dies with it.)
        kill_group(self.pid, running=running)


class _Ending:
    """How a run ended: the first exit code told (its announcement, or its process's)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.code: int | None = None

    def set(self, code: int | None) -> None:
        if not self.done.is_set():
            self.code = code
            self.done.set()


class _Output:
    """One of the run's output streams, cut into lines as its bytes come (a line may come
    in several reads; the last one may have no newline)."""

    def __init__(self, stream: str, capture: LogCapture, on_line: OnLine,
                 ending: _Ending) -> None:
        self.stream = stream
        self.capture = capture
        self.on_line = on_line
        self.ending = ending
        self.partial = bytearray()
        self.closed = False

    def feed(self, data: bytes) -> None:
        end = data.rfind(b"\n")
        if end < 0:
            self.partial += data
            return
        if self.partial:
            self.partial += data[:end]
            lines = bytes(self.partial).split(b"\n")
        else:
            lines = data[:end].split(b"\n")
        self.partial = bytearray(data[end + 1:])
        for raw in lines:
            self.line(raw)

    def end(self) -> None:
        """Its pipe has closed (or is no longer read): what is left is its last line."""
        if self.partial:
            self.line(bytes(self.partial))
            self.partial.clear()
        self.closed = True

    def line(self, raw: bytes) -> None:
        mark = raw.rfind(_EXIT_MARK) if self.stream == "stdout" else -1
        if mark >= 0:
            # (after the node's last line, or after what it wrote with no newline at its end)
            with contextlib.suppress(ValueError):
                code = int(raw[mark + len(_EXIT_MARK):])
                if mark:
                    self.line(raw[:mark])
                self.ending.set(code)
                return
        text = raw.decode("utf-8", errors="replace")
        which, level = self.stream, None
        if text.startswith(STDERR_MARK):  # the node's Python stderr, sent in order on stdout
            which, text = "stderr", text[1:]
        elif text.startswith(LOG_MARK) and text.count(LOG_MARK) >= 2:  # a logging record
            level, text = text[1:].split(LOG_MARK, 1)
            which = "log"
        try:
            shown = self.capture.add(which, text, level)
            if shown is not None:
                self.on_line(which, shown, level)
        except Exception:  # (one line lost to a failing listener; the run goes on)
            log.exception("a line of a run's output could not be kept")


class _Watch:
    """The selector loop of :meth:`ProcessLauncher._watch`."""

    #: How often the exit is asked for when the process gives no descriptor for it.
    POLL_SECONDS = 0.05

    def __init__(self, child: _Child, selector: selectors.BaseSelector,
                 outputs: dict[int, _Output], exit_fd: int | None, ending: _Ending) -> None:
        self.child = child
        self.selector = selector
        self.outputs = outputs
        self.exit_fd = exit_fd
        self.ending = ending

    def pipes_closed(self) -> bool:
        return all(output.closed for output in self.outputs.values())

    def until(self, done: Callable[[], bool], seconds: float) -> bool:
        """Read and wait until ``done()`` or ``seconds`` have passed; whether it is done."""
        deadline = time.monotonic() + seconds
        while not done():
            if self.exit_fd is None and not self.ending.done.is_set():
                code = self.child.wait(0)
                if code is not None:
                    self.ending.set(code)
                    continue
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.exit_fd is None:
                left = min(left, self.POLL_SECONDS)
            if not self.selector.get_map():  # (both pipes closed)
                if self.exit_fd is not None:  # (and its exit told: nothing to wait for)
                    return done()
                time.sleep(left)
                continue
            for key, _ in self.selector.select(left):
                if key.fd == self.exit_fd:
                    self.selector.unregister(key.fd)
                    self.ending.set(self.child.wait(5))
                    continue
                output = self.outputs[key.fd]
                try:
                    data = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    output.feed(data)
                else:
                    self.selector.unregister(key.fd)
                    output.end()
        return True
