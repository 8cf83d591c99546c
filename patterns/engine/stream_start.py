"""A stream pass's first batch over a local run's control channel, the rest over Flight.

A run forked by a warm worker talks to the engine over its control channel and makes no
Flight connection until it reads (see :mod:`patterns.sdk._channel`). For a stream, that
connection (a gRPC channel, its HTTP/2 handshake, the engine's accept: about 5 ms on an idle
machine, 10-20 ms on a loaded one) came before the pass's first row. So the pass starts on
the channel: the engine answers with the pass's position and its first batch (Arrow IPC
after the JSON body), having looked one batch further; when there is more, it keeps the
pass's reader (*parked*, under an id) and the node reads the rest over Flight (``do_get`` of
kind ``rest``), connecting while it goes through the first batch. A pass of one batch, the
usual run that finds the rows committed since the last one, never needs Flight at all.

A parked read belongs to its run: taken once, by that run's token; what is left when the
run ends is closed with it (its store cursor too).
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from patterns import wire
from patterns.sdk._channel import shared_ipc

#: A first batch larger than this goes over Flight with the rest (the channel carries it
#: in one frame, held whole in both processes).
MAX_INLINE_BYTES = 64 << 20
#: A first batch of at least this many bytes goes in a sealed memfd passed with the answer
#: (the node maps it: no copy through the socket's buffers into a fresh heap of the node's,
#: then another into ``bytes``); a smaller one, in the frame.
MIN_SHARED_BYTES = 256 << 10


@dataclass(frozen=True)
class WithData:
    """A control channel's answer that carries Arrow IPC data after its JSON body."""

    result: Any
    data: bytes | memoryview
    #: The data in a sealed memfd instead (its descriptor, its size; see
    #: :func:`patterns.sdk._channel.shared_ipc`), sent with the answer and then closed.
    shared: tuple[int, int] | None = None

    def close(self) -> None:
        """Let go of the memfd of an answer that will not be sent."""
        if self.shared is not None:
            os.close(self.shared[0])


class ParkedReads:
    """Readers of passes whose first batch went over the channel, by id, until taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reads: dict[str, tuple[str, pa.Schema, Iterator[pa.RecordBatch]]] = {}

    def park(self, token: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> str:
        key = uuid.uuid4().hex
        with self._lock:
            self._reads[key] = (token, schema, batches)
        return key

    def take(self, token: str, key: Any) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        with self._lock:
            found = self._reads.get(str(key))
            if found is None or found[0] != token:
                raise flight.FlightServerError(wire.error_message(
                    "protocol", "no such read in progress (taken already, or its run is over)"))
            del self._reads[str(key)]
        return found[1], found[2]

    def close(self, token: str, key: str) -> None:
        """Close the parked read ``key`` of the run with ``token`` (nobody will take it)."""
        with self._lock:
            found = self._reads.get(key)
            if found is None or found[0] != token:
                return
            del self._reads[key]
        _close(found[2])

    def drop(self, token: str) -> None:
        """Close the parked reads of the run with ``token`` (it is over)."""
        with self._lock:
            keys = [k for k, (t, _, _) in self._reads.items() if t == token]
            gone = [self._reads.pop(k)[2] for k in keys]
        for batches in gone:
            _close(batches)


def _close(batches: Iterator[pa.RecordBatch]) -> None:
    close = getattr(batches, "close", None)
    if close is not None:
        close()


def first_batch(token: str, pos: dict[str, Any], schema: pa.Schema,
                batches: Iterator[pa.RecordBatch], parked: ParkedReads) -> WithData:
    """The channel's answer to a pass: ``{"position": pos, "rest": id or None}`` and the
    pass's first batch (none when the pass is empty; none either, and every batch in
    ``rest``, when the first is larger than :data:`MAX_INLINE_BYTES`)."""
    if pos.get("empty"):
        return WithData({"position": pos, "rest": None}, b"")
    first = next(batches, None)
    second = next(batches, None) if first is not None else None
    if first is not None and first.nbytes > MAX_INLINE_BYTES:
        rest = itertools.chain([first] if second is None else [first, second], batches)
        return WithData({"position": pos, "rest": parked.park(token, schema, rest)}, b"")
    key = None
    if second is not None:  # (looked one batch further: only a pass of one batch ends here)
        key = parked.park(token, schema, itertools.chain([second], batches))
    if first is not None and first.nbytes >= MIN_SHARED_BYTES:
        shared = shared_ipc(pa.Table.from_batches([first], schema))
        if shared is not None:
            return WithData({"position": pos, "rest": key}, b"", shared)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        if first is not None:
            writer.write_batch(first)
    return WithData({"position": pos, "rest": key}, sink.getvalue())
