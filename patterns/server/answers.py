"""What waits for a webhook request's answer: :class:`Answer` carries a request's outcome
from the intake's threads to the event loop (a group's answers in one wake-up of the loop),
:class:`Responses` the requests of response webhooks (``respond: true``) until a node calls
``respond_to_request(key, payload)``."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from concurrent.futures import Future
from typing import Any

log = logging.getLogger("patterns.server")


class BadRecords(Exception):
    """The records of a request cannot be stored (a type or a field name the table refuses)."""


class Unavailable(Exception):
    """The intake cannot take records now (the store or the journal's disk fails)."""


class Answer:
    """A request's outcome (its record count, or an exception), set by the writer thread and
    handed to whoever waits: an event loop gets every answer of a group in one call, so a
    group wakes the loop once, not once per request."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop
        self.future: asyncio.Future[int] | Future[int] = (
            loop.create_future() if loop is not None else Future())
        self.outcome: int | BaseException | None = None

    def set_result(self, count: int) -> None:
        self.outcome = count

    def set_exception(self, exc: BaseException) -> None:
        self.outcome = exc

    def done(self) -> bool:
        return self.outcome is not None

    def deliver(self) -> None:
        """Set the future (on the loop's thread, for an asyncio future)."""
        if self.future.done():
            return
        outcome = self.outcome
        if outcome is None:  # (a bug: never leave a request waiting)
            outcome = Unavailable("the webhook intake failed; nothing was acknowledged")
        if isinstance(outcome, BaseException):
            self.future.set_exception(outcome)
        else:
            self.future.set_result(outcome)


def deliver_all(answers: list[Answer]) -> None:
    for answer in answers:
        answer.deliver()


class Responses:
    """Requests of response webhooks waiting for ``respond_to_request``."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = {}
        self._lock = threading.Lock()

    def expect(self, loop: asyncio.AbstractEventLoop) -> tuple[str, asyncio.Future[Any]]:
        key = secrets.token_urlsafe(18)
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._waiting[key] = (loop, future)
        return key, future

    def forget(self, key: str) -> None:
        with self._lock:
            self._waiting.pop(key, None)

    def respond(self, key: str, payload: Any) -> None:
        """Called by a node (through the data plane) with a record's request key. The first
        answer to a request wins; an answer for a request no longer waiting (answered
        already — the records of one request share its key —, timed out, or from before a
        restart) is dropped with a warning, never an error: the node's run must not fail
        over it, or it would meet the same record again at every run."""
        with self._lock:
            waiting = self._waiting.pop(key, None)
        if waiting is None:
            log.warning("respond_to_request: no request is waiting for key %r (answered "
                        "already, timed out, or from before a restart); the answer is dropped",
                        key)
            return
        loop, future = waiting

        def answer() -> None:
            if not future.done():
                future.set_result(payload)

        loop.call_soon_threadsafe(answer)

    def close(self) -> None:
        with self._lock:
            waiting, self._waiting = dict(self._waiting), {}
        for loop, future in waiting.values():
            def cancel(f: asyncio.Future[Any] = future) -> None:
                if not f.done():
                    f.cancel()
            try:
                loop.call_soon_threadsafe(cancel)
            except RuntimeError:
                continue
