"""A page of a big DuckDB table sorted on a column, without a top-N over every row's id.

``ORDER BY col, id LIMIT n`` makes DuckDB carry every row's text id through its top-N (on
10,000,000 rows, 250 ms or more), while the top-N of the column alone skips most row groups
by their zone maps (a few ms). So the page is found in two steps, in one snapshot:

1. the ``n + 1`` th value of the column past the cursor's value (the column alone, rows with
   no value left out);
2. the page's rows among those whose value lies between the cursor's and that one: the
   keyset SQL's own condition and order, over far fewer rows.

Rows past the cursor and beyond that value come after at least ``n + 1`` rows that are in
the range, so they cannot be on the page. When there are fewer than ``n + 1`` such values
(the end of the order, or a cursor among the rows with no value), the keyset SQL serves the
page (None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from patterns.store.interface import PageRequest
    from patterns.store.model import TableMeta


def threshold_rowids(cur: duckdb.DuckDBPyConnection, meta: TableMeta, ask: PageRequest,
                     in_order: bool, limit: int) -> list[int] | None:
    """The rowids of the first ``limit`` rows past ``ask.after``, ordered by ``ask.sort``
    then the id, or None for the keyset SQL. ``in_order``: the rows are in id order by
    ``rowid``, which then breaks ties (an integer, not the text id)."""
    from patterns.store.tables import q, qualified

    if ask.sort is None or ask.where is not None:
        return None
    table, col = qualified(meta.physical), q(ask.sort)
    direction = "DESC" if ask.descending else "ASC"
    beyond = "<" if ask.descending else ">"
    cursor = [v for v in ask.after if not isinstance(v, dict)] if ask.after else None
    chosen: list[int] = []
    where, params = f"{col} IS NOT NULL", []
    if cursor is not None:
        if len(cursor) != 2 or cursor[0] is None or not in_order:
            return None  # (another sort's cursor: the SQL says so; among no values: the SQL)
        # the rows that tie with the cursor's value and come after its id, then the rest
        chosen = _ties_after(cur, meta, table, col, cursor[0], cursor[1], limit)
        where, params = f"{col} {beyond} ?", [cursor[0]]
    need = limit - len(chosen)
    if need > 0:
        found = cur.execute(f"SELECT count(*), {'min' if ask.descending else 'max'}(v) FROM "
                            f"(SELECT {col} AS v FROM {table} WHERE {where} ORDER BY v "
                            f"{direction} LIMIT {need})", params).fetchall()
        count, last = found[0]
        if int(count) < need:
            return None  # (the end of the values: rows with none follow)
        tie = "rowid" if in_order else q(meta.physical_id)
        more = cur.execute(
            f"SELECT rowid FROM {table} WHERE {where} AND {col} {'>=' if ask.descending else '<='}"
            f" ? ORDER BY {col} {direction}, {tie} LIMIT {need}", [*params, last]).fetchall()
        chosen.extend(int(r) for (r,) in more)
    return chosen


def rows_by_rowid(cur: duckdb.DuckDBPyConnection, meta: TableMeta, id_name: str,
                  chosen: list[int]) -> pa.Table:
    """The rows ``chosen`` (rowids), in that order."""
    import pyarrow as pa

    from patterns.store.reads import select_list
    from patterns.store.tables import q, qualified

    rows = cur.sql(f"SELECT {select_list(meta)}, {q(meta.physical_id)} AS {q(id_name)}, "
                   f"rowid AS __patterns_rowid FROM {qualified(meta.physical)} WHERE rowid IN "
                   f"(SELECT unnest(?::BIGINT[]))", params=[chosen]).to_arrow_table()
    place = {r: i for i, r in enumerate(chosen)}
    fetched = rows.column("__patterns_rowid").to_pylist()
    take = sorted(range(len(fetched)), key=lambda i: place[int(fetched[i])])
    return rows.take(pa.array(take, pa.int64())).drop_columns(["__patterns_rowid"])


def _ties_after(cur: duckdb.DuckDBPyConnection, meta: TableMeta, table: str, col: str,
                value: Any, last_id: Any, limit: int) -> list[int]:
    """The first ``limit`` rows (rowids, in order) whose ``col`` is ``value`` and whose id is
    greater than ``last_id``, in a version in id order by rowid: the rows of the value by
    rowid, bisected on the id (one row looked up a step; comparing every row's text id
    would read the whole id column)."""
    import numpy as np

    from patterns.store.tables import q

    ties = np.sort(np.asarray(cur.execute(f"SELECT rowid FROM {table} WHERE {col} = ?",
                                          [value]).fetchnumpy()["rowid"], dtype=np.int64))
    probe = f"SELECT {q(meta.physical_id)} > ? FROM {table} WHERE rowid = ?"
    low, high = 0, len(ties)
    while low < high:
        middle = (low + high) // 2
        found = cur.execute(probe, [last_id, int(ties[middle])]).fetchall()
        if found and found[0][0]:
            high = middle
        else:
            low = middle + 1
    return [int(r) for r in ties[low:low + limit]]
