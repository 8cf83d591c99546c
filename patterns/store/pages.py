"""The SQL of one page of a table's rows: keyset paging, a sort and one filter.

``WHERE (sort, id) > (v, i) ORDER BY sort, id LIMIT n``: a deep page costs what the first
does. Rows with no value in the sort column come last in either direction. A filter compares
a column with a value given as text, which the store casts to the column's type (a prepared
parameter, never pasted into the SQL).
"""

from __future__ import annotations

from typing import Any

from patterns.errors import ConfigError
from patterns.positions import StreamPosition
from patterns.store.interface import PageRequest
from patterns.store.model import TableMeta
from patterns.store.reads import select_list
from patterns.store.tables import q, qualified

OPERATORS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
             "contains": "contains", "null": "null", "notnull": "notnull"}


def page_sql(meta: TableMeta, ask: PageRequest, id_name: str, *, by_rowid: bool = False
             ) -> tuple[str, list[Any]]:
    """The SELECT for one page (one row more than asked, to know if another follows).

    ``by_rowid`` (DuckDB): the top-N picks the page's ``rowid`` s reading only the sort, id
    and filter columns, and the page's rows are then read by ``rowid``, in one statement
    (one snapshot). DuckDB's top-N otherwise reads every column of every row it passes: on
    10,000,000 rows the first page took three times as long."""
    names = meta.visible_names()
    for column, what in ((ask.sort, "sort on"), (ask.where, "filter on")):
        if column is not None and column not in names:
            raise ConfigError(f"table '{meta.name}' has no column '{column}' to {what}; its "
                              f"columns are {', '.join(names)}")
    if ask.op not in OPERATORS:
        raise ConfigError(f"unknown filter operator '{ask.op}': use one of "
                          f"{', '.join(OPERATORS)}")
    ident = q(meta.physical_id)
    clauses: list[str] = []
    params: list[Any] = []
    if ask.where is not None:
        col = q(ask.where)
        if ask.op == "null":
            clauses.append(f"{col} IS NULL")
        elif ask.op == "notnull":
            clauses.append(f"{col} IS NOT NULL")
        elif ask.op == "contains":
            clauses.append(f"strpos(lower(CAST({col} AS VARCHAR)), lower(?)) > 0")
            params.append(ask.value or "")
        else:
            if ask.value is None:
                raise ConfigError(f"the filter '{ask.where} {OPERATORS[ask.op]}' needs a value")
            clauses.append(f"{col} {OPERATORS[ask.op]} ?")
            params.append(ask.value)
    beyond, beyond_params = past_cursor(meta, ask)
    if beyond is not None:
        clauses.append(beyond)
        params.extend(beyond_params)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    table, order, limit = qualified(meta.physical), page_order(meta, ask), int(ask.limit) + 1
    select = f"SELECT {select_list(meta)}, {ident} AS {q(id_name)} FROM {table}"
    if by_rowid:
        return (f"{select} WHERE rowid IN (SELECT rowid FROM {table}{where} ORDER BY {order} "
                f"LIMIT {limit}) ORDER BY {order}"), params
    return f"{select}{where} ORDER BY {order} LIMIT {limit}", params


def page_order(meta: TableMeta, ask: PageRequest) -> str:
    """The ORDER BY of a page: the sort column (no value last either way), then the id."""
    ident = q(meta.physical_id)
    if ask.sort is None:
        return ident
    return f"{q(ask.sort)} {'DESC' if ask.descending else 'ASC'} NULLS LAST, {ident}"


def past_cursor(meta: TableMeta, ask: PageRequest) -> tuple[str | None, list[Any]]:
    """The condition a row past ``ask.after`` meets in the page's order (None: no cursor),
    and its parameters: true exactly for the rows after the cursor's, so it is false and
    then true along the order (:mod:`patterns.store.page_orders` bisects on it)."""
    # (a cursor may end with the rank hint of a kept order, patterns.store.page_orders)
    cursor = [v for v in ask.after if not isinstance(v, dict)] if ask.after else None
    if cursor is None:
        return None, []
    ident = q(meta.physical_id)
    if ask.sort is None:
        return f"{ident} > ?", [cursor[-1]]
    if len(cursor) != 2:
        raise ConfigError("the page cursor belongs to another sort; start again from the "
                          "first page")
    col = q(ask.sort)
    value, last_id = cursor
    if value is None:
        return f"({col} IS NULL AND {ident} > ?)", [last_id]
    beyond = "<" if ask.descending else ">"
    return (f"({col} {beyond} ? OR ({col} = ? AND {ident} > ?) OR {col} IS NULL)",
            [value, value, last_id])


def behind_sql(meta: TableMeta, position: StreamPosition | None) -> tuple[str, list[Any]]:
    """A one-row, one-column SELECT: how many rows of ``meta``'s current version a stream at
    ``position`` has not delivered yet (the rest of its pass, then every row committed after
    the pass). No position, or one on another version, has every row ahead of it."""
    from patterns.store.reads import stream_sql

    table = qualified(meta.physical)
    ident = q(meta.physical_id)
    if position is None or position.version != meta.version:
        return f"SELECT count(*) AS behind FROM {table}", []
    after, params = (f" WHERE {ident} > ?", [position.hi]) if position.hi is not None else ("", [])
    later = f"(SELECT count(*) FROM {table}{after})"
    if position.done:
        return f"SELECT {later} AS behind", params
    rest, rest_params = stream_sql(meta, position)
    return (f"SELECT (SELECT count(*) FROM ({rest}) AS pass) + {later} AS behind",
            [*rest_params, *params])
