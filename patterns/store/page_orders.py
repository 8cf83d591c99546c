"""Deep pages of a big DuckDB table in milliseconds: the table's row ids in page order, kept.

DuckDB serves ``WHERE (sort, id) > (v, i) ORDER BY sort, id LIMIT n`` as a top-N over every
row past the cursor: no index of DuckDB's serves a range in order, and a text id's zone maps
(8-byte prefixes) prune nothing when many rows were committed in the same second. On
10,000,000 rows that is 0.5 to 2 s a page, however deep. So, for a table of at least
:data:`MIN_ROWS` rows and a page with no filter, the store sorts the table's ``rowid`` s once
per (table version and contents, sort column, direction) — the very order of the keyset SQL,
``sort NULLS LAST, id`` — and keeps that array (8 bytes a row; the :data:`KEEP` most recently
used), made when the user pages past the first page (the first page is the keyset SQL's,
as fast as a slice). A page is then a slice of it, fetched by ``rowid`` (which DuckDB looks up by row
group), and its rows carry their rank so the next page's cursor can say where it starts.

A cursor's rank is only used while the table is as it was when the order was made (the
order's token is in the cursor). A cursor without one (the first page's, which the keyset
SQL served, or one from before the table changed) is placed in the order by bisection on the
keyset SQL's own condition, a row looked up by ``rowid`` a step. Filtered pages always use
the SQL (a filter usually leaves few rows).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pyarrow as pa

    from patterns.store.interface import PageRequest
    from patterns.store.model import TableMeta

#: Below this many rows the keyset SQL is fast enough (tens of milliseconds).
MIN_ROWS = 100_000
#: How many orders are kept (each 8 bytes a row: 80 MB for 10,000,000 rows).
KEEP = 4
#: The suffix of the hidden column holding each row's place (``token:rank``).
RANK_SUFFIX = "_rank"

_orders: OrderedDict[str, np.ndarray[Any, Any]] = OrderedDict()
_lock = threading.Lock()
_building: dict[str, threading.Lock] = {}


def hint_of(after: Any) -> dict[str, Any] | None:
    """The rank hint a cursor carries last (``{"at": rank, "of": token}``), if any."""
    if after and isinstance(after[-1], dict):
        return dict(after[-1])
    return None


def ordered_page(cur: duckdb.DuckDBPyConnection, meta: TableMeta, ask: PageRequest,
                 id_name: str) -> pa.Table | None:
    """The page from the kept order, or None when the keyset SQL should serve it."""
    from patterns.store.reads import select_list
    from patterns.store.tables import q, qualified

    if ask.where is not None:
        return None
    table = qualified(meta.physical)
    # (one statement, not two: each statement is a wait for a CPU on a busy machine)
    rows, where = cur.execute(f"SELECT (SELECT count(*) FROM {table}), (SELECT path FROM "
                              f"duckdb_databases() WHERE database_name = current_database())"
                              ).fetchall()[0]
    count = int(rows)
    if count < MIN_ROWS:
        return None
    key = repr((where, meta.physical, meta.last_id, meta.last_commit, count, ask.sort,
                ask.descending))
    token = hashlib.sha1(key.encode()).hexdigest()[:12]
    if not ask.after:
        # The first page: the keyset SQL is as fast as a kept order's slice, so an order is
        # only made when the user pages on (the sort of 10,000,000 rows takes seconds).
        order = _kept(key)
        if order is None:
            return None
        start = 0
    else:
        order = _order(cur, meta, ask, key, table)
        hint = hint_of(ask.after)
        at = hint.get("at") if hint is not None and hint.get("of") == token else None
        if isinstance(at, int) and 0 <= at <= len(order):
            start = at
        else:  # (a cursor of the SQL's first page, another order, or the table changed)
            start = _place_after(cur, meta, ask, table, order)
    chosen = order[start:start + int(ask.limit) + 1]
    rows = cur.sql(f"SELECT {select_list(meta)}, {q(meta.physical_id)} AS {q(id_name)}, "
                   f"rowid AS __patterns_rowid FROM {table} WHERE rowid IN "
                   f"(SELECT unnest(?::BIGINT[]))", params=[chosen.tolist()]).to_arrow_table()
    return _in_order(rows, chosen, start, token, id_name)


def _kept(key: str) -> np.ndarray[Any, Any] | None:
    with _lock:
        found = _orders.get(key)
        if found is not None:
            _orders.move_to_end(key)
        return found


def _place_after(cur: duckdb.DuckDBPyConnection, meta: TableMeta, ask: PageRequest,
                 table: str, order: np.ndarray[Any, Any]) -> int:
    """Where the page after a keyset cursor starts in ``order``: the first place whose row
    is past the cursor. The keyset SQL's own condition (:func:`~patterns.store.pages.
    past_cursor`) is false and then true along the order, so a bisection finds it, looking
    up one row by ``rowid`` a step (24 steps for 10,000,000 rows, a millisecond or two each;
    finding the cursor's row by its id instead reads the whole id column). The cursor's row
    need not be in the table any more."""
    from patterns.store.pages import past_cursor

    condition, params = past_cursor(meta, ask)
    if condition is None:
        return 0
    probe = f"SELECT coalesce({condition}, false) FROM {table} WHERE rowid = ?"
    low, high = 0, len(order)
    while low < high:
        middle = (low + high) // 2
        found = cur.execute(probe, [*params, int(order[middle])]).fetchall()
        if found and found[0][0]:
            high = middle
        else:
            low = middle + 1
    return low


def _order(cur: duckdb.DuckDBPyConnection, meta: TableMeta, ask: PageRequest, key: str,
           table: str) -> np.ndarray[Any, Any]:
    from patterns.store.tables import q

    found = _kept(key)
    if found is not None:
        return found
    with _lock:
        building = _building.setdefault(key, threading.Lock())
    with building:  # (two pages asked at once build the order once)
        with _lock:
            kept = _orders.get(key)
        if kept is not None:
            return kept
        import numpy as np

        ident = q(meta.physical_id)
        order = (f"{q(ask.sort)} {'DESC' if ask.descending else 'ASC'} NULLS LAST, {ident}"
                 if ask.sort else ident)
        made = np.asarray(cur.execute(f"SELECT rowid FROM {table} ORDER BY {order}"
                                      ).fetchnumpy()["rowid"], dtype=np.int64)
        with _lock:
            _orders[key] = made
            while len(_orders) > KEEP:
                _orders.popitem(last=False)
            _building.pop(key, None)
        return made


def _in_order(rows: pa.Table, chosen: np.ndarray[Any, Any], start: int, token: str,
              id_name: str) -> pa.Table:
    import pyarrow as pa

    place = {int(r): i for i, r in enumerate(chosen)}
    fetched = rows.column("__patterns_rowid").to_pylist()
    take = sorted(range(len(fetched)), key=lambda i: place[int(fetched[i])])
    ordered = rows.take(pa.array(take, pa.int64())).drop_columns(["__patterns_rowid"])
    ranks = [f"{token}:{start + place[int(fetched[i])]}" for i in take]
    return ordered.append_column(id_name + RANK_SUFFIX, pa.array(ranks, pa.string()))

