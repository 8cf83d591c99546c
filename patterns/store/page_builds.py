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
_pending: dict[str, threading.Thread] = {}


def kept(key: str) -> tuple[np.ndarray[Any, Any], bool] | None:
    """The order kept for ``key`` and whether it is whole, if one is kept."""
    with _lock:
        found = _orders.get(key)
        if found is not None:
            _orders.move_to_end(key)
        return found


def keep(key: str, order: np.ndarray[Any, Any], *, whole: bool = True) -> None:
    with _lock:
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
        thread = threading.Thread(target=_build, args=(con, key, sql, meta, count, by),
                                  name="patterns-page-order", daemon=True)
        _pending[key] = thread
    thread.start()


def wait_for_builds(timeout: float) -> bool:
    """Wait until no order is being made (tests, benchmarks); False if one still is."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        with _lock:
            threads = list(_pending.values())
        if not threads:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        threads[0].join(left)


def _build(con: duckdb.DuckDBPyConnection, key: str, sql: str, meta: TableMeta,
           count: int, by: tuple[str, bool] | None) -> None:
    import os

    import duckdb
    import numpy as np

    from patterns.store.migrations import META
    from patterns.store.tables import qualified

    with contextlib.suppress(OSError, AttributeError):  # (Linux: this thread only)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # (pages first)
    try:
        with _one_at_a_time, con:
            con.execute("BEGIN TRANSACTION")  # (the check and the sort see one snapshot)
            rows, changed = con.execute(
                f"SELECT (SELECT count(*) FROM {qualified(meta.physical)}), (SELECT count(*) "
                f"FROM {META}.tables WHERE physical = ? AND (last_id IS DISTINCT FROM ? OR "
                f"last_commit <> ?))", [meta.physical, meta.last_id, meta.last_commit]
            ).fetchall()[0]
            same = int(rows) == count and not changed
            if same:
                made = _numpy_order(con, qualified(meta.physical), *by) if by else None
                if made is None:
                    made = np.asarray(con.execute(sql).fetchnumpy()["rowid"], dtype=np.int64)
                keep(key, made)
            con.execute("COMMIT")
    except duckdb.Error:
        pass  # (the store closed, or the table was dropped: the pages use the SQL)
    finally:
        with _lock:
            _pending.pop(key, None)


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
