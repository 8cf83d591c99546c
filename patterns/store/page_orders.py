"""Pages of a big DuckDB table in milliseconds: the table's row ids in page order, kept.

DuckDB serves ``WHERE (sort, id) > (v, i) ORDER BY sort, id LIMIT n`` as a top-N over every
row past the cursor: no index of DuckDB's serves a range in order, and a text id's zone maps
(8-byte prefixes) prune nothing when many rows were committed in the same second. On
10,000,000 rows that is 0.25 to 2 s a page, however deep. So, for a table of at least
:data:`MIN_ROWS` rows and a page with no filter, pages are slices of an *order*: the table's
``rowid`` s in the very order of the keyset SQL (``sort NULLS LAST, id``), fetched by
``rowid`` (which DuckDB looks up by row group). The page's rows carry their rank, so the next
page's cursor says where it starts.

**Rows in id order.** Every write appends rows in id order or keeps the order of the rows it
leaves (an SQL UPDATE, which gives rows new ids where they are, records the version in
``patterns_meta.id_order``; migration 5 records every version made before). In a
version so kept, ``rowid`` order is id order: the order by id is the rowids themselves (no
sort, no memory when no row was deleted), and ties of a sort are broken by ``rowid``, an
integer, instead of the text id.

**Orders of a sort** (:data:`KEEP` of them, 8 bytes a row, most recently used) are made by a
background thread, one at a time, when a page of a new (table state, sort, direction) is
asked for; until one is ready, pages are found by :mod:`patterns.store.page_thresholds` (two
small top-Ns). An order is tied to the table state it was made from — the database, physical
table, last id, last commit and row count —, checked again in the thread's own snapshot, so
it never serves rows of another state: a cursor's rank is only used while its order's token
(in the cursor) is the current state's. A cursor without one is placed in the order by
bisection on the keyset SQL's own condition, a row looked up by ``rowid`` a step. Filtered
pages always use the SQL (a filter usually leaves few rows).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from patterns.store.page_builds import build_later, keep, kept

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import duckdb
    import pyarrow as pa

    from patterns.store.interface import PageRequest
    from patterns.store.model import TableMeta

#: Below this many rows the keyset SQL is fast enough (tens of milliseconds).
MIN_ROWS = 100_000
#: How many rows of a sort's order the first page finds and keeps (the same two top-Ns as
#: for one page): the pages after it are slices of them while the whole order is made.
PART = 1_000
#: The suffix of the hidden column holding each row's place (``token:rank``).
RANK_SUFFIX = "_rank"

_marked: dict[str, bool] = {}  # (database path: has patterns_meta.id_order)


def hint_of(after: Any) -> dict[str, Any] | None:
    """The rank hint a cursor carries last (``{"at": rank, "of": token}``), if any."""
    if after and isinstance(after[-1], dict):
        return dict(after[-1])
    return None


def ordered_page(cur: duckdb.DuckDBPyConnection, meta: TableMeta, ask: PageRequest,
                 id_name: str, cursors: Callable[[], duckdb.DuckDBPyConnection] | None = None
                 ) -> pa.Table | None:
    """The page from an order, or from two small top-Ns, or None for the keyset SQL.
    ``cursors`` gives connections to make orders with in the background (none: no order
    is made)."""
    from patterns.store.page_thresholds import rows_by_rowid, threshold_rowids
    from patterns.store.pages import page_sql
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
    in_order = in_id_order(cur, meta, str(where))
    key = repr((where, meta.physical, meta.last_id, meta.last_commit, count, ask.sort,
                ask.descending, in_order))
    token = hashlib.sha1(key.encode()).hexdigest()[:12]
    tie = "rowid" if in_order else q(meta.physical_id)
    order: Any = None  # (a range, or a numpy array of rowids)
    whole = True
    found = kept(key)
    if found is not None:
        order, whole = found
    by_id = ask.sort is None or ask.sort == meta.id_column  # (never NULL; ties: none)
    if order is None and by_id and in_order:
        order = _rowids(cur, table, count, ask.descending and ask.sort is not None)
        if not isinstance(order, range):
            keep(key, order)
    limit = int(ask.limit) + 1
    page = None
    if order is not None:
        hint = hint_of(ask.after)
        at = hint.get("at") if hint is not None and hint.get("of") == token else None
        if not ask.after:
            start = 0
        elif isinstance(at, int) and 0 <= at <= len(order):
            start = at
        else:  # (a cursor of the SQL's pages, of another order, or from before a change)
            start = _place_after(cur, meta, ask, table, order)
        if whole or start + limit <= len(order):  # (a part: only inside it)
            chosen = [int(r) for r in order[start:start + limit]]
            return _ranked(rows_by_rowid(cur, meta, id_name, chosen), start, token, id_name)
    if not ask.after:  # the first page: the first rows of the order, kept for the next pages
        first = threshold_rowids(cur, meta, ask, in_order, max(limit, PART))
        if first is None and limit < PART:  # (fewer values than that: this page's only)
            first = threshold_rowids(cur, meta, ask, in_order, limit)
        if first is not None:
            import numpy as np

            keep(key, np.asarray(first, dtype=np.int64), whole=False)
            page = _ranked(rows_by_rowid(cur, meta, id_name, first[:limit]), 0, token, id_name)
    else:
        picked = threshold_rowids(cur, meta, ask, in_order, limit)
        page = None if picked is None else rows_by_rowid(cur, meta, id_name, picked)
    if page is None:
        sql, params = page_sql(meta, ask, id_name, by_rowid=True)
        page = cur.sql(sql, params=params or None).to_arrow_table()
    if cursors is not None:  # (after the page: the sort does not slow it down)
        sort = (f"{q(ask.sort)} {'DESC' if ask.descending else 'ASC'} NULLS LAST, {tie}"
                if ask.sort else tie)
        build_later(cursors, key, f"SELECT rowid FROM {table} ORDER BY {sort}", meta,
                    count, (ask.sort, ask.descending) if in_order and ask.sort else None)
    return page

def in_id_order(cur: duckdb.DuckDBPyConnection, meta: TableMeta, where: str) -> bool:
    """Whether the rows of ``meta``'s version are in id order by ``rowid`` (see above)."""
    from patterns.store.migrations import META
    from patterns.store.tables import stored_in_order

    if where not in _marked:  # (a store opened read-only before migration 5 has no record)
        _marked[where] = bool(cur.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = 'id_order'", [META]).fetchall()[0][0])
    return _marked[where] and stored_in_order(cur, meta, None)


def _rowids(cur: duckdb.DuckDBPyConnection, table: str, count: int, descending: bool
            ) -> Any:
    """The order by id of a version in id order: its rowids, ascending or descending."""
    import numpy as np

    if not cur.execute(f"SELECT 1 FROM {table} WHERE rowid >= ? LIMIT 1", [count]).fetchall():
        # no row was deleted: the rowids are 0 .. count - 1, a range (no memory)
        return range(count - 1, -1, -1) if descending else range(count)
    found = np.sort(np.asarray(cur.execute(f"SELECT rowid FROM {table}").fetchnumpy()["rowid"],
                               dtype=np.int64))
    return found[::-1] if descending else found


def _place_after(cur: duckdb.DuckDBPyConnection, meta: TableMeta, ask: PageRequest,
                 table: str, order: Sequence[int]) -> int:
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


def _ranked(rows: pa.Table, start: int, token: str, id_name: str) -> pa.Table:
    import pyarrow as pa

    ranks = [f"{token}:{start + i}" for i in range(rows.num_rows)]
    return rows.append_column(id_name + RANK_SUFFIX, pa.array(ranks, pa.string()))
