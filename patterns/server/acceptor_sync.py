"""An acceptor's fsync helpers: small processes that ``fdatasync`` its journal segments, so
the acceptor's event loop neither blocks on a flush nor hands it to a thread (docs/server.md,
"Acceptors").

Overlapping flushes matter here: a lone ``fdatasync`` of an append took 3 to 4 ms on the test
machine's disk, while two or more in flight at once took 0.2 to 0.5 ms each. A thread of the
acceptor's own gets that overlap but costs it dearly: each sync is a hand-off to the
executor, a wake-up and a GIL hand-over each way (perf: the futex wake-ups and the executor
were a third of an acceptor's CPU at the benchmark's load). A helper process shares no GIL:
the acceptor sends it the segments' file descriptors (``SCM_RIGHTS``) with one ``sendmsg``
and reads its answer — one errno per file, 0 when durable — as its socket becomes readable.
A sync covers what was written before it was sent, as a thread's would.

The helpers are forked at the acceptor's start, before its event loop and before any
journal is open, and keep nothing of it but their own socket. They die with the acceptor
(``PR_SET_PDEATHSIG``); when one ends on its own, its sync is reported failed.
"""

from __future__ import annotations

import array
import contextlib
import errno
import os
import signal
import socket
from collections.abc import Callable

#: Most file descriptors one sync request carries (one per app written in the group).
MAX_FILES = 200
_ERRNOS = "i"
#: Told how a sync ended: an exception per file, in order (None: that file is durable).
Synced = Callable[[list[OSError | None]], None]


class SyncHelpers:
    """``count`` helper processes, each with at most one sync in flight."""

    def __init__(self, count: int) -> None:
        self.socks: list[socket.socket] = []
        self._waiting: dict[int, tuple[Synced, int]] = {}  # by socket: (told, files)
        self.on_lost: Callable[[], None] | None = None
        for _ in range(count):
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            if os.fork() == 0:  # (the helper: nothing of the acceptor's but its own socket)
                _helper(theirs)
            theirs.close()
            self.socks.append(mine)
        self._idle = list(self.socks)
        self.live = count

    def start(self) -> None:
        """Read the helpers' answers on the running loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        for sock in self.socks:
            sock.setblocking(False)
            loop.add_reader(sock.fileno(), self._answer, sock)

    def idle(self) -> int:
        """How many helpers could take a sync now."""
        return len(self._idle)

    def sync(self, fds: list[int], told: Synced) -> None:
        """fdatasync ``fds`` in an idle helper; ``told`` with the outcome (on the loop)."""
        sock = self._idle.pop()
        try:
            sock.sendmsg([b"s"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                   array.array("i", fds))])
        except OSError as exc:  # (the helper is gone)
            self._lost(sock)
            told([exc] * len(fds))
            return
        self._waiting[sock.fileno()] = (told, len(fds))

    def _answer(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(4 * (MAX_FILES + 1))
        except BlockingIOError:
            return
        except OSError:
            data = b""
        told, count = self._waiting.pop(sock.fileno(), (None, 0))
        if not data:  # (the helper ended)
            self._lost(sock)
            if told is not None:
                told([OSError(errno.EIO, "the journal's fsync helper ended")] * count)
            return
        self._idle.append(sock)
        if told is not None:
            codes = array.array(_ERRNOS, data)
            told([None if not code else OSError(code, os.strerror(code)) for code in codes])

    def _lost(self, sock: socket.socket) -> None:
        import asyncio

        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(sock.fileno())
        with contextlib.suppress(ValueError):
            self._idle.remove(sock)
        sock.close()
        self.live -= 1
        if self.on_lost is not None:
            self.on_lost()


def _helper(sock: socket.socket) -> None:
    """A helper's life: fdatasync the files each request carries, answer their errnos."""
    code = 0
    try:
        keep = sock.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 20)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # (a ^C is the acceptor's to handle)
        # (a SIGTERM to the whole group, as systemd sends, must not end the syncs of the
        # acceptor's drain: a helper ends with the acceptor, by EOF or PR_SET_PDEATHSIG)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        die_with_parent()
        while True:
            try:
                _, fds, _, _ = socket.recv_fds(sock, 1, MAX_FILES)
            except OSError:
                break
            if not fds:  # (the acceptor closed its end: it ended)
                break
            codes = array.array(_ERRNOS)
            for fd in fds:
                try:
                    os.fdatasync(fd)
                    codes.append(0)
                except OSError as exc:
                    codes.append(exc.errno or errno.EIO)
                finally:
                    os.close(fd)
            sock.send(codes.tobytes())
    except BaseException:  # (nothing of the acceptor's may run here: no traceback, no atexit)
        code = 1
    os._exit(code)


def die_with_parent() -> None:
    """Be killed when the parent (the server, the acceptor) dies, however it dies (Linux; a
    fork clears the setting, so each process asks for itself)."""
    import ctypes

    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # (it died before that)
        os._exit(0)
