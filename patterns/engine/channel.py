"""The engine's end of a local run's control channel (the node's end, and the frame format:
:mod:`patterns.sdk._channel`).

The launcher makes a socket pair per run, hands one end to the run's process and the other
to :func:`serve`, on a thread of its own, which answers each request with what the data
plane would answer over Flight (:meth:`patterns.engine.dataplane.DataPlane.channel_request`)
until the process closes its end (it ended, or was killed). A frame that breaks the format,
or is cut short, ends the channel: nothing of it is staged, and the run's next request fails
("the engine closed the control channel"); other runs, and the engine, go on.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from patterns import wire
from patterns.engine.stream_start import WithData
from patterns.sdk._channel import ChannelClosed, recv_frame, send_frame

log = logging.getLogger("patterns.engine")

#: Answers one request: (body, Arrow data) -> the result, or raises a Flight error.
Answer = Callable[[dict[str, Any], bytes | pa.Buffer], Any]


def serve(sock: socket.socket, answer: Answer) -> None:
    """Answer the requests on ``sock`` until it closes; then close it."""
    with sock:
        while True:
            try:
                frame = recv_frame(sock)
            except ChannelClosed as exc:
                log.warning("a run's control channel was closed: %s", exc)
                return
            except OSError:  # (the launcher shut it down: the run is over)
                return
            if frame is None:
                return
            data: bytes | memoryview = b""
            shared: tuple[int, int] | None = None  # (the data in a memfd instead)
            try:
                answered = answer(*frame)
                if isinstance(answered, WithData):  # (a stream pass's first batch)
                    answered, data, shared = answered.result, answered.data, answered.shared
                reply = {"result": answered}
            except flight.FlightError as exc:  # (what Flight would have sent the node)
                reply = {"error": str(exc)}
            except (pa.ArrowException, KeyError, TypeError, ValueError) as exc:
                reply = {"error": wire.error_message(
                    "protocol", f"a bad request on the control channel: "
                                f"{type(exc).__name__}: {exc}")}
            except Exception as exc:  # the engine's own failure (a store that failed): the
                # node is told, and its run fails with this message, as over Flight
                reply = {"error": wire.error_message(
                    "EngineError", f"the engine failed: {type(exc).__name__}: {exc}")}
            try:
                send_frame(sock, reply, data if "result" in reply else b"", shared=shared)
            except OSError:  # the process is gone
                return
            finally:
                if shared is not None:
                    os.close(shared[0])


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """(the engine's end, the run's end) of a new control channel; the run's end is to be
    passed on and closed here once it has been."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return ours, theirs
