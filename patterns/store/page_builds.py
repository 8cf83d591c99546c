"""The kept orders of big tables' pages (:mod:`patterns.store.page_orders`), made in the
background so that no page waits for a sort of the whole table.

An order is asked for by a key naming the table state it must reflect (the database,
physical table, last id, last commit, row count, sort and direction). A thread sorts the
table's ``rowid`` s on a connection of its own, in a snapshot of its own, and keeps the
result only if that snapshot is the state of the key: the same row count, and, for a
table's current version, the same last id and last commit (an older version is never
written). One order is made at a time (a sort of 10,000,000 rows takes both cores for
seconds); at most :data:`KEEP` are kept, the most recently used, each 8 bytes a row
(80 MB for 10,000,000 rows): memory is bounded by ``(KEEP + 1) * 8 bytes * rows`` of the
biggest table paged, the one being made included.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb
    import numpy as np

    from patterns.store.model import TableMeta

#: How many orders are kept (each 8 bytes a row: 80 MB for 10,000,000 rows).
KEEP = 4
#: How many orders may wait to be made; more asks are dropped (asked again by a later page).
QUEUED = 4

#: Each key's order and whether it is whole (else the first rows of the order only: what
#: the first page of a sort found, so the pages after it are slices too).
#: DuckDB types numpy holds exactly and orders as DuckDB does.
EXACT_IN_NUMPY = {"BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "FLOAT", "DOUBLE", "DATE", "TIMESTAMP"}

_orders: OrderedDict[str, tuple[np.ndarray[Any, Any], bool]] = OrderedDict()
_lock = threading.Lock()
_one_at_a_time = threading.Lock()
_pending: dict[str, _Build] = {}


class _Build:
    """One order being made: its thread, its connection and the store that asked for it
    (``cursors``, compared by equality: the store's bound ``cursor`` method)."""

    def __init__(self, thread: threading.Thread, con: duckdb.DuckDBPyConnection,
                 owner: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self.thread, self.con, self.owner = thread, con, owner
        self.stopped = self.running = False  # (both under _lock)


def kept(key: str) -> tuple[np.ndarray[Any, Any], bool] | None:
    """The order kept for ``key`` and whether it is whole, if one is kept."""
    with _lock:
        found = _orders.get(key)
        if found is not None:
            _orders.move_to_end(key)
        return found


def keep(key: str, order: np.ndarray[Any, Any], *, whole: bool = True) -> None:
    with _lock:
        _keep(key, order, whole)


def _keep(key: str, order: np.ndarray[Any, Any], whole: bool) -> None:
    if not whole and key in _orders and _orders[key][1]:
        return  # (never a part over the whole)
    _orders[key] = (order, whole)
    _orders.move_to_end(key)
    while len(_orders) > KEEP:
        _orders.popitem(last=False)


def forget() -> None:
    """Drop every kept order (benchmarks time the pages of a new sort with it)."""
    with _lock:
        _orders.clear()


def build_later(cursors: Callable[[], duckdb.DuckDBPyConnection], key: str, sql: str,
                meta: TableMeta, count: int, by: tuple[str, bool] | None = None) -> None:
    """Make the order ``sql`` (one column, ``rowid``) for ``key`` in the background, unless
    it is kept, being made, or too many are waiting. ``by`` (a column and whether
    descending; for a version in id order by rowid): the same order, made by numpy when the
    column holds numbers, times or booleans (see :func:`_numpy_order`)."""
    with _lock:
        if (key in _orders and _orders[key][1]) or key in _pending or len(_pending) >= QUEUED:
            return
        con = cursors()  # (a connection of its own to the same database)
        thread = threading.Thread(target=_build, args=(key, sql, meta, count, by),
                                  name="patterns-page-order", daemon=True)
        _pending[key] = _Build(thread, con, cursors)
    thread.start()


def stop(cursors: Callable[[], duckdb.DuckDBPyConnection], timeout: float = 30) -> None:
    """Stop the orders being made for the store whose ``cursor`` method is ``cursors``,
    before it closes: DuckDB refuses to close a connection while one of its cursors runs a
    statement. A sort under way is interrupted and waited for; one waiting for its turn
    never starts (its connection is closed here)."""
    import time

    import duckdb

    with _lock:
        builds = [build for build in _pending.values() if build.owner == cursors]
        for build in builds:
            build.stopped = True
        running = [build for build in builds if build.running]
    for build in builds:
        if not build.running:
            build.con.close()
    deadline = time.monotonic() + timeout
    for build in running:
        while build.thread.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(duckdb.Error):  # (closed by its thread meanwhile)
                build.con.interrupt()  # (each turn: a statement may begin after one)
            build.thread.join(0.05)


def wait_for_builds(timeout: float) -> bool:
    """Wait until no order is being made (tests, benchmarks); False if one still is."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        with _lock:
            threads = [build.thread for build in _pending.values()]
        if not threads:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        threads[0].join(left)


def _build(key: str, sql: str, meta: TableMeta, count: int, by: tuple[str, bool] | None
           ) -> None:
    import os

    import duckdb

    with _lock:
        build = _pending[key]
    with contextlib.suppress(OSError, AttributeError):  # (Linux: this thread only)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # (pages first)
    made = None
    try:
        with _one_at_a_time:
            with _lock:
                if build.stopped:
                    return  # (its store closed; so did this connection)
                build.running = True
            with build.con as con:
                made = _sort(con, sql, meta, count, by)
    except duckdb.Error:
        pass  # (the store closed, or the table was dropped: the pages use the SQL)
    finally:
        with _lock:  # (kept and no longer pending at once: a page between the two would
            _pending.pop(key, None)  # find neither, or find it pending and not ask again)
            if made is not None:
                _keep(key, made, True)


def _sort(con: duckdb.DuckDBPyConnection, sql: str, meta: TableMeta, count: int,
          by: tuple[str, bool] | None) -> np.ndarray[Any, Any] | None:
    """The order ``sql`` makes (or numpy, by ``by``), if the table is still in the state
    it was asked for (``count`` rows, ``meta`` 's last id and commit)."""
    import numpy as np

    from patterns.store.migrations import META
    from patterns.store.tables import qualified

    con.execute("BEGIN TRANSACTION")  # (the check and the sort see one snapshot)
    rows, changed = con.execute(
        f"SELECT (SELECT count(*) FROM {qualified(meta.physical)}), (SELECT count(*) "
        f"FROM {META}.tables WHERE physical = ? AND (last_id IS DISTINCT FROM ? OR "
        f"last_commit <> ?))", [meta.physical, meta.last_id, meta.last_commit]
    ).fetchall()[0]
    made = None
    if int(rows) == count and not changed:
        made = _numpy_order(con, qualified(meta.physical), *by) if by else None
        if made is None:
            made = np.asarray(con.execute(sql).fetchnumpy()["rowid"], dtype=np.int64)
    con.execute("COMMIT")
    return made


def _numpy_order(con: duckdb.DuckDBPyConnection, table: str, column: str, descending: bool
                 ) -> np.ndarray[Any, Any] | None:
    """``ORDER BY column NULLS LAST, rowid`` by a stable numpy sort on one core (DuckDB's
    sort takes every core for seconds, and the pages asked meanwhile wait), or None when
    the column is not of numbers, times or booleans, or holds NaN (whose place DuckDB and
    numpy see differently)."""
    import numpy as np

    from patterns.store.tables import q

    relation = con.sql(f"SELECT rowid, {q(column)} AS v FROM {table}")
    if str(relation.types[1]) not in EXACT_IN_NUMPY:  # (DECIMAL, HUGEINT, text, ...: DuckDB)
        return None
    found = relation.fetchnumpy()
    rowids = np.asarray(found["rowid"], dtype=np.int64)
    values: Any = found["v"]
    mask = np.ma.getmaskarray(values)
    data = np.ma.getdata(values)
    if data.dtype.kind == "f":
        if np.isnan(data[~mask]).any():
            return None
        keys = -data if descending else data
    elif data.dtype.kind in "iubmM":
        keys = data.astype(np.int64) if data.dtype.kind in "bmM" else data
        if data.dtype.kind == "u" and data.dtype.itemsize == 8:
            return None
        keys = ~keys.astype(np.int64) if descending else keys.astype(np.int64)
    else:
        return None
    if np.any(rowids[1:] < rowids[:-1]):  # (a scan gives rowid order; if not, sort first)
        first = np.argsort(rowids, kind="stable")
        rowids, keys, mask = rowids[first], keys[first], mask[first]
    have = np.flatnonzero(~mask)
    ranked = have[np.argsort(keys[have], kind="stable")]  # (ties stay in rowid order)
    return np.concatenate([rowids[ranked], rowids[np.flatnonzero(mask)]])
