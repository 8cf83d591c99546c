"""The run's control channel: a Unix socket the engine hands to a local run's process.

A run forked by a warm worker on the engine's own machine gets, besides its output pipes
and its config, one end of a socket pair whose other end the engine serves (see
:mod:`patterns.engine.channel`). Small requests (actions such as a checkpoint, and writes
of at most :data:`MAX_INLINE_DATA` bytes of Arrow data) go over it instead of the Arrow
Flight data plane: no gRPC connection to make per process, no HTTP/2 framing per call.
Larger writes travel as shared memory: the node writes the Arrow data into a sealed memfd
and passes its descriptor along with the frame (``SCM_RIGHTS``); the engine maps it and
stages the table from the mapped pages, so the data is copied once (into the memfd) instead
of through gRPC and two socket buffers into the engine's heap. Sealed (no writing, growing
or shrinking once sent) so the node cannot change data the engine has checked. Reads still
go over Flight (connected on first use), as do all the requests of a run on another machine
(a Dask worker), which has no channel, and writes where memfds are missing.

The channel is inherited, never found: no path leads to it, so no other process (another
run, inside the sandbox or not) can reach it, and every request on it still carries the
run's token. One frame is a header (two unsigned 32-bit lengths, network order) followed
by a JSON body and, for a write, an Arrow IPC stream (or, passed with the header, a memfd
holding it: the second length is then its size); the engine answers each request with
one frame holding ``{"result": ...}`` or ``{"error": "<a wire.error_message>"}``.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import socket
import struct
import threading
from typing import TYPE_CHECKING, Any

from patterns import wire

if TYPE_CHECKING:
    import pyarrow as pa

HEADER = struct.Struct("!II")
#: The largest JSON body a side accepts (a state document travels in it).
MAX_BODY = 64 << 20
#: Writes up to this size travel on the channel; larger ones go over Flight.
MAX_INLINE_DATA = 4 << 20
#: The largest Arrow payload the engine accepts on the channel.
MAX_DATA = MAX_INLINE_DATA + (1 << 20)
#: The largest Arrow payload a node accepts in an answer (a stream pass's first batch, at
#: most 64 MB: patterns.engine.stream_start.MAX_INLINE_BYTES, and its IPC framing).
MAX_REPLY_DATA = 80 << 20


class ChannelClosed(ConnectionError):
    """The other side closed the channel, or sent something that is not a frame."""


#: A memfd's seals: once passed on, its data can be neither changed nor resized.
SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL


def shared_ipc(data: pa.Table) -> tuple[int, int] | None:
    """``data`` as an Arrow IPC stream in a new sealed memfd: (its descriptor, its size),
    for :func:`send_frame`'s ``shared``; None where there are no memfds, or where one cannot
    hold ``data`` (a file size limit, no memory to spare): Flight then."""
    import pyarrow as pa

    try:
        fd = os.memfd_create("patterns-write", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except (AttributeError, OSError):  # (not Linux, or a sandbox without memfds)
        return None
    try:
        # Written by Arrow straight into the memfd's pages, mapped: through a Python file
        # each of the stream's buffers would be a call needing the GIL, which the node's
        # code holds (a sender thread writing so waited up to 5 ms a buffer). The size
        # comes from writing it once to a stream that only counts; the pages are allocated
        # first (no memory to spare: an error here, not a fault while writing).
        counted = pa.MockOutputStream()
        _write_ipc(counted, data)
        size = int(counted.size())
        os.posix_fallocate(fd, 0, size)
        pages = mmap.mmap(fd, size)
        try:
            _write_ipc(pa.FixedSizeBufferWriter(pa.py_buffer(pages)), data)
        finally:  # (after a failed write a view may still be held: the seal then fails)
            with contextlib.suppress(BufferError):
                pages.close()
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
        return fd, os.fstat(fd).st_size
    except (OSError, pa.ArrowException):  # (e.g. EFBIG under RLIMIT_FSIZE: a memfd is a file)
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise


def _write_ipc(sink: pa.NativeFile, data: pa.Table) -> None:
    """``data`` as an Arrow IPC stream into ``sink``, closed after (no view of it is kept)."""
    import pyarrow as pa

    with sink, pa.ipc.new_stream(sink, data.schema) as stream:
        stream.write_table(data)


def send_frame(sock: socket.socket, body: dict[str, Any], data: bytes | memoryview = b"",
               *, shared: tuple[int, int] | None = None) -> None:
    """``shared``: (a sealed memfd, its size) holding the Arrow data instead of ``data``
    (see :func:`shared_ipc`), passed with the header; the caller closes its descriptor."""
    payload = wire.encode(body)
    if shared is not None:
        frame = HEADER.pack(len(payload), shared[1]) + payload
        sent = socket.send_fds(sock, [frame], [shared[0]])
        sock.sendall(frame[sent:])
        return
    head = HEADER.pack(len(payload), len(data))
    if len(data) > 65536:
        sock.sendall(head + payload)
        sock.sendall(data)
    else:
        sock.sendall(b"".join((head, payload, data)))


def recv_frame(sock: socket.socket, *, max_data: int = MAX_DATA
               ) -> tuple[dict[str, Any], bytes | pa.Buffer] | None:
    """One frame: its body and its data (the pages of a memfd passed with it, mapped, not
    copied); None if the channel closes before a frame starts. Raises
    :class:`ChannelClosed` for a frame cut short or one that breaks the format."""
    head, fds = _recv_head(sock)
    if head is None:
        return None
    size, data_size = HEADER.unpack(head)
    try:
        if size > MAX_BODY or (data_size > max_data and not fds):
            raise ChannelClosed(f"a frame of {size} + {data_size} bytes is larger than allowed")
        raw = _recv_exactly(sock, size, at_start=False)
        data = (_mapped(fds[0], data_size) if fds else
                _recv_exactly(sock, data_size, at_start=False) if data_size else b"")
    finally:
        for fd in fds:
            os.close(fd)
    assert raw is not None and data is not None
    try:
        body = wire.decode(raw)
    except (ValueError, TypeError):
        raise ChannelClosed("a frame's body is not JSON") from None
    if not isinstance(body, dict):
        raise ChannelClosed("a frame's body is not a JSON object")
    return body, data


def _recv_head(sock: socket.socket) -> tuple[bytes | None, list[int]]:
    """A frame's header, and the descriptor passed with it, if any."""
    head, fds, _, _ = socket.recv_fds(sock, HEADER.size, 1)
    if not head:
        for fd in fds:
            os.close(fd)
        return None, []
    if len(head) < HEADER.size:
        rest = _recv_exactly(sock, HEADER.size - len(head), at_start=False)
        assert rest is not None
        head += rest
    return head, fds


def _mapped(fd: int, size: int) -> pa.Buffer:
    """The first ``size`` bytes of a sealed memfd, mapped read-only."""
    import pyarrow as pa

    try:
        sealed = fcntl.fcntl(fd, fcntl.F_GET_SEALS) & SEALS == SEALS
    except OSError:
        sealed = False
    if not sealed:
        raise ChannelClosed("a frame's shared data is not a sealed memfd")
    if os.fstat(fd).st_size < size:
        raise ChannelClosed("a frame's shared data is shorter than the frame says")
    if not size:
        return pa.py_buffer(b"")
    return pa.py_buffer(mmap.mmap(fd, size, prot=mmap.PROT_READ))


def _recv_exactly(sock: socket.socket, size: int, *, at_start: bool) -> bytes | None:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            if at_start and got == 0:
                return None
            raise ChannelClosed("the channel closed in the middle of a frame")
        got += n
    return bytes(buffer)


class ChannelClient:
    """The node's end: one request at a time (a lock keeps the node's threads apart)."""

    def __init__(self, fd: int) -> None:
        self._sock = socket.socket(fileno=fd)
        self._sock.set_inheritable(False)  # (the node's own subprocesses never get it)
        self._lock = threading.Lock()
        self.broken: str | None = None

    def request(self, body: dict[str, Any], data: bytes | memoryview = b"", *,
                shared: tuple[int, int] | None = None) -> dict[str, Any]:
        """The engine's answer to ``body`` (``{"result": ...}`` or ``{"error": ...}``);
        ChannelClosed if the engine is gone or the channel was broken before. ``shared``:
        the data in a memfd instead (see :func:`send_frame`)."""
        return self.exchange(body, data, shared=shared)[0]

    def exchange(self, body: dict[str, Any], data: bytes | memoryview = b"", *,
                 shared: tuple[int, int] | None = None
                 ) -> tuple[dict[str, Any], bytes | pa.Buffer]:
        """:meth:`request`, and the Arrow data that came with the answer (a stream pass's
        first batch, see :mod:`patterns.engine.stream_start`)."""
        with self._lock:
            if self.broken is not None:
                raise ChannelClosed(self.broken)
            try:
                send_frame(self._sock, body, data, shared=shared)
                reply = recv_frame(self._sock, max_data=MAX_REPLY_DATA)
            except OSError as exc:
                self.broken = f"the engine's control channel broke: {exc}"
                raise ChannelClosed(self.broken) from None
            if reply is None:
                self.broken = "the engine closed the control channel"
                raise ChannelClosed(self.broken)
            return reply

    def close(self) -> None:
        self._sock.close()
