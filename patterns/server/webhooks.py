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
import queue as queue_mod
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from patterns.errors import PatternsError
from patterns.store.duckdb import DuckDBStore
from patterns.store.model import Checkpoint, TableOp

#: Most requests committed in one transaction.
MAX_GROUP = 1000


@dataclass
class Submission:
    node_id: str
    table: str
    records: list[dict[str, Any]]
    done: Future[int] = field(default_factory=Future)


class WebhookIntake:
    def __init__(self, store: DuckDBStore, on_commit: Callable[[], None]) -> None:
        self.store = store
        self.on_commit = on_commit
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
            committed = self._commit_group(group)
        except PatternsError:
            # One request's records may not fit with the others (or the table): commit each
            # alone, so only the bad one fails.
            committed = False
            for submission in group:
                self._commit_alone(submission)
        except Exception as exc:  # the store failed (disk full...): nothing was written
            for submission in group:
                if not submission.done.done():
                    submission.done.set_exception(exc)
            return
        if committed:
            for submission in group:
                submission.done.set_result(len(submission.records))
        self.on_commit()

    def _commit_group(self, group: list[Submission]) -> bool:
        from patterns.sdk._convert import records_to_arrow

        by_table: dict[str, list[dict[str, Any]]] = {}
        node_of: dict[str, str] = {}
        for submission in group:
            by_table.setdefault(submission.table, []).extend(submission.records)
            node_of[submission.table] = submission.node_id
        ops = {table: [TableOp("append", data=records_to_arrow(records, table))]
               for table, records in by_table.items()}
        node_id = next(iter(node_of.values())) if len(node_of) == 1 else "webhooks"
        self.store.commit(Checkpoint(run_id=f"webhook-{secrets.token_hex(8)}",
                                     node_id=node_id, ops=ops, wakes=True))
        return True

    def _commit_alone(self, submission: Submission) -> None:
        try:
            self._commit_group([submission])
        except Exception as exc:
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
        """Called by a node (through the data plane) with a record's request key."""
        from patterns.errors import NodeError

        with self._lock:
            waiting = self._waiting.pop(key, None)
        if waiting is None:
            raise NodeError(f"no request is waiting for key {key!r}: it was answered already, "
                            f"timed out, or the key is not a record's patterns_request_key")
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
