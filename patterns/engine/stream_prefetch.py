"""A run's first stream pass, read while its process starts.

A run that consumes a stream asks for its next pass as soon as its code reaches the loop;
the engine then ran the pass's query and encoded its first batch while the node waited
(5-6 ms of a 40 ms run finding 10,000 new rows in 1,000,000: bench/RESULTS.md, i15-pass).
The engine knows, when it registers a run, where each of the node's streams stands (the
positions of its last checkpoint): the pass that node code will ask for first is the one
from there. So, for a run with a control channel, every declared table the node has a
position on is read ahead on a thread of the data plane's, while the process is forked and
its code imported; the node's request is answered with it when it asks for exactly that
pass (same port, position, order and starting value), and otherwise the read is dropped and
the pass is read as before.

Nothing a node sees changes. A pass read ahead ends at the rows committed when it was read
(a pass always ends at the rows committed when it is read); rows committed between then and
the node's request are in its next pass, which ``consume_records()`` asks for before it
ends. The rows a pass read ahead count as the run's rows read only once the node takes
it: a read the node never asks for counts for nothing. What a run did not take is closed
when the run ends (its store cursor too), after the read ahead, if still running, is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from patterns.engine.stream_start import ParkedReads, WithData

if TYPE_CHECKING:
    import pyarrow as pa

    from patterns.engine.session import RunSession

#: Answers a pass: (session, the request's ``get`` body, count) -> the channel's answer.
#: ``count`` is the batches' way into the run's rows read (see :class:`Tally`).
Answer = Callable[["RunSession", dict[str, Any], "Tally"], WithData]


class Tally:
    """The rows of a pass read ahead: kept aside until the node takes the pass, then added
    to the run's rows read, as are the rows of its batches read after that."""

    def __init__(self, session: RunSession, port: str) -> None:
        self._session = session
        self._store = session.store_for(port, "r")
        self._held = 0
        self._live = False
        self._lock = threading.Lock()

    def counted(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            with self._lock:
                if self._live:
                    self._add(batch.num_rows)
                else:
                    self._held += batch.num_rows
            yield batch

    def take(self) -> None:
        with self._lock:
            self._live = True
            if self._held:
                self._add(self._held)
            self._held = 0

    def _add(self, rows: int) -> None:
        read = self._session.rows_read
        read[self._store] = read.get(self._store, 0) + rows


@dataclass
class _Ahead:
    request: dict[str, Any]  # the pass's request, as the node will send it
    tally: Tally
    answer: Future[WithData]


class Prefetches:
    """The passes read ahead for each registered run, by the run's token."""

    def __init__(self, answer: Answer, parked: ParkedReads) -> None:
        self._answer = answer
        self._parked = parked
        self._lock = threading.Lock()
        self._ahead: dict[str, list[_Ahead]] = {}
        #: The ports each run asked for a pass on (no use reading ahead on them any more).
        self._asked: dict[str, set[str]] = {}
        self._pool: ThreadPoolExecutor | None = None
        #: Passes answered from a read ahead (for tests and benchmarks).
        self.served = 0

    def start(self, session: RunSession) -> None:
        """Read ahead the first pass of each stream of ``session``'s node that has a
        position (on a thread: this returns at once)."""
        if session.node.kind == "sql":  # (runs in the engine: it reads what it reads)
            return
        # Only a node with a position on a table of the store's has a first pass to read
        # (its positions are in the store's memory once read): a run that has none, a
        # trivial run, wakes no thread.
        stores = {store for store, _ in session.ports.values() if store not in session.external}
        if not stores or not stores & set(session.store.memory(session.node.id)[1]):
            return
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="patterns-prefetch")
                pool = self._pool
        with self._lock:
            self._ahead[session.token] = []
            self._asked[session.token] = set()
        try:
            pool.submit(self._read_ahead, session)
        except RuntimeError:  # (the data plane is stopping: the node reads as before)
            self.drop(session.token)

    def _read_ahead(self, session: RunSession) -> None:
        with self._lock:
            if session.token not in self._ahead:  # (the run is over already)
                return
        _, positions = session.store.memory(session.node.id)
        for port, (store, _) in session.ports.items():
            pos = positions.get(store)
            if pos is None or store in session.external:
                continue
            request = {"kind": "stream", "port": port, "position": pos.to_json(),
                       "order_by": pos.order_by, "starting_value": None}
            tally = Tally(session, port)
            answer: Future[WithData] = Future()
            with self._lock:
                ahead = self._ahead.get(session.token)
                if ahead is None:
                    return
                if port in self._asked.get(session.token, ()):
                    continue  # (the node asked first: its pass was read for it)
                ahead.append(_Ahead(request, tally, answer))
            try:
                answer.set_result(self._answer(session, request, tally))
            except BaseException as exc:  # (the node's own request will meet it, if any)
                answer.set_exception(exc)

    def take(self, token: str, request: dict[str, Any]) -> WithData | None:
        """The answer read ahead for ``request`` (a ``get`` of the run with ``token``), if
        it is the pass read ahead; None if not: the caller reads it. A pass read ahead is
        given once, to the first request; any other request drops it."""
        with self._lock:
            asked = self._asked.get(token)
            if asked is not None:
                asked.add(str(request.get("port")))
            ahead = self._ahead.get(token)
            if not ahead:
                return None
            found = next((a for a in ahead if a.request["port"] == request.get("port")), None)
            if found is None:
                return None
            ahead.remove(found)
        try:
            answer = found.answer.result()
        except Exception:
            return None  # (the node's request reads it again, and meets the error itself)
        if all(request.get(k) == v for k, v in found.request.items() if k != "kind"):
            found.tally.take()
            self.served += 1
            return answer
        answer.close()  # (not the pass asked for: its data and its reader are let go)
        rest = answer.result.get("rest")
        if rest is not None:
            self._parked.close(token, rest)
        return None

    def drop(self, token: str) -> None:
        """Forget the run with ``token`` (it is over), once what is being read ahead for it
        is done."""
        with self._lock:
            ahead = self._ahead.pop(token, None) or []
            self._asked.pop(token, None)
        wait([a.answer for a in ahead])  # (their errors are nobody's now)
        for a in ahead:
            if a.answer.exception() is None:
                a.answer.result().close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
