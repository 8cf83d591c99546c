"""Reading ahead: the next batch fetched from the data plane on a thread of its own.

Without it, a node asks the engine for the next batch only once its loop has gone through
the one before, and then waits while the engine reads it, sends it and the node's Arrow
decodes it. With it, a thread reads the next batch (and does what ``prepare`` does with it,
Arrow work in C that releases the GIL: joining a JSON column's texts) while the node's loop
runs; it reads one only when fewer than ``depth`` wait ready, so memory stays bounded by the
batch size.

Items already in hand (a list: a stream pass whose only batch came in the control channel's
answer) are prepared in the caller's thread as they are taken: there is nothing to read
ahead, and starting a thread and handing each item across would cost more than the work
(a thread's start waits for it to be scheduled: 10-20 ms on a loaded machine).

What the thread meets (the batches' end, or an error) reaches the caller in order, after the
batches before it, and is raised in the caller's thread. Closing the iterator (the loop
ended early, or a rollback moved the stream) stops the thread after the batch it is reading.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
U = TypeVar("U")

_END = object()


def read_ahead(source: Iterator[T] | list[T], prepare: Callable[[T], U],
               depth: int = 1) -> Generator[U, None, None]:
    """``prepare(item)`` of every item of ``source``, in order, made on a thread up to
    ``depth`` items ahead of the caller (an item is read only once there is room for it);
    made as they are taken, with no thread, when ``source`` is a list."""
    if isinstance(source, list):
        return _in_hand(source, prepare)
    ready: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue()
    room = threading.Semaphore(depth)
    stop = threading.Event()

    def work() -> None:
        try:
            while True:
                while not room.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    item = next(source)
                except StopIteration:
                    break
                ready.put((prepare(item), None))
        except BaseException as exc:  # (raised again in the caller's thread)
            ready.put((None, exc))
            return
        ready.put((_END, None))

    thread = threading.Thread(target=work, name="patterns-read-ahead", daemon=True)
    thread.start()
    return _taken(ready, room, stop)


def _in_hand(items: list[T], prepare: Callable[[T], U]) -> Generator[U, None, None]:
    while items:
        yield prepare(items.pop(0))  # (each item is let go of once it is prepared)


def _taken(ready: queue.Queue[tuple[Any, BaseException | None]], room: threading.Semaphore,
           stop: threading.Event) -> Generator[Any, None, None]:
    try:
        while True:
            item, error = ready.get()
            room.release()  # (the thread reads the next item while this one is used)
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
