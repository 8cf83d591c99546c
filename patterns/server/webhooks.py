"""Webhook intake: records from HTTP requests, committed before the request is answered.

Requests are committed in groups: one committer thread takes every request waiting, turns
their records into one Arrow table per webhook table and commits them in **one store
transaction**; each request is answered (2xx) only after that transaction commits. Under
load, the requests that arrive while a commit is in progress form the next group, so the
cost of a commit is shared and throughput follows the load; alone, a request waits for one
commit only.

Response webhooks (``respond: true``): each record carries ``patterns_request_key``; the
request is held open until a node calls ``respond_to_request(key, payload)`` or the timeout
passes (504).
"""

from __future__ import annotations

import asyncio
import logging
import queue as queue_mod
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from patterns.engine.session import store_rules
from patterns.errors import DiskFullError, PatternsError
from patterns.store.interface import Store
from patterns.store.model import Checkpoint, TableOp

log = logging.getLogger("patterns.server")

#: Most requests committed in one transaction.
MAX_GROUP = 1000


class BadRecords(Exception):
    """The records of a request cannot be stored (a type or a field name the table refuses)."""


@dataclass
class Submission:
    node_id: str
    table: str
    records: list[dict[str, Any]]
    done: Future[int] = field(default_factory=Future)


class WebhookIntake:
    def __init__(self, store: Store, on_commit: Callable[[], None],
                 app: Callable[[], Any] | None = None) -> None:
        self.store = store
        self.on_commit = on_commit
        self.app = app  # the app now (its tables' contracts and settings.max_columns)
        self._queue: queue_mod.Queue[Submission | None] = queue_mod.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._commit_loop, name="patterns-webhooks",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Commit what is waiting, then stop."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()

    def submit(self, node_id: str, table: str, records: list[dict[str, Any]]) -> Future[int]:
        submission = Submission(node_id, table, records)
        self._queue.put(submission)
        return submission.done

    def _commit_loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue_mod.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                group.append(more)
            self._commit(group)

    def _commit(self, group: list[Submission]) -> None:
        try:
            self._commit_group(group)
        except Exception:
            if len(group) == 1:
                self._commit_alone(group[0])
            else:
                # One request's records may not fit with the others or the table, or the
                # store failed: commit each alone, so a bad request fails only itself.
                for submission in group:
                    self._commit_alone(submission)
        else:
            for submission in group:
                submission.done.set_result(len(submission.records))
        self.on_commit()

    def _commit_group(self, group: list[Submission]) -> None:
        from patterns.sdk._convert import records_to_arrow

        by_table: dict[str, list[dict[str, Any]]] = {}
        node_of: dict[str, str] = {}
        for submission in group:
            by_table.setdefault(submission.table, []).extend(submission.records)
            node_of[submission.table] = submission.node_id
        ops = {table: [TableOp("append", data=records_to_arrow(records, table))]
               for table, records in by_table.items()}
        node_id = next(iter(node_of.values())) if len(node_of) == 1 else "webhooks"
        app = self.app() if self.app is not None else None
        self.store.commit(Checkpoint(
            run_id=f"webhook-{secrets.token_hex(8)}", node_id=node_id, ops=ops, wakes=True,
            rules=store_rules(app) if app is not None else {},
            max_columns=app.settings.max_columns if app is not None else None,
            infer_timestamps=True))

    def _commit_alone(self, submission: Submission) -> None:
        try:
            self._commit_group([submission])
        except DiskFullError as exc:  # not the request's fault: a 503, nothing written
            submission.done.set_exception(exc)
        except PatternsError as exc:  # (a DataError or a NodeError: the records)
            submission.done.set_exception(BadRecords(str(exc)))  # the request's own fault
        except Exception as exc:  # the store failed (a full disk...): nothing was written
            submission.done.set_exception(exc)
        else:
            submission.done.set_result(len(submission.records))


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
