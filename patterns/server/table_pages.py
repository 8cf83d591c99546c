"""Pages of a table's rows for the Studio: keyset paging, sorting and one filter.

A page is asked for with an opaque ``after`` cursor (the last row's sort value and id), never
an offset, so a deep page costs what the first does: ``WHERE (sort, id) > (v, i) ORDER BY
sort, id LIMIT n``. Rows with no value in the sort column come last in either direction.
Filters compare a column with a value given as text, which DuckDB casts to the column's type
(a prepared parameter, never pasted into the SQL).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from patterns.errors import ConfigError

ID = "__patterns_page_id"
#: Text longer than this is cut in a page (a 5 MB cell would make every page of its table
#: megabytes); the download has it whole.
MAX_CELL = 10_000
OPERATORS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
             "contains": "contains", "null": "null", "notnull": "notnull"}


@dataclass(frozen=True)
class PageQuery:
    """What the Studio asks for: a sort, a filter, where to start and how many rows."""

    sort: str | None = None
    descending: bool = False
    where: str | None = None
    op: str = "eq"
    value: str | None = None
    after: str | None = None
    limit: int = 100


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        raise ConfigError(f"the page cursor {text[:40]!r} is not one this server gave; "
                          f"start again from the first page") from None
    if not isinstance(values, list) or len(values) not in (1, 2):
        raise ConfigError("the page cursor is not one this server gave; start again from "
                          "the first page")
    return values


def page_sql(meta: Any, ask: PageQuery) -> tuple[str, list[Any]]:
    """The SELECT for one page (one row more than asked, to know if another follows)."""
    from patterns.store.reads import select_list
    from patterns.store.tables import q, qualified

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
            clauses.append(f"contains(lower(CAST({col} AS VARCHAR)), lower(?))")
            params.append(ask.value or "")
        else:
            if ask.value is None:
                raise ConfigError(f"the filter '{ask.where} {OPERATORS[ask.op]}' needs a value")
            clauses.append(f"{col} {OPERATORS[ask.op]} ?")
            params.append(ask.value)
    cursor = decode_cursor(ask.after) if ask.after else None
    if ask.sort is None:
        order = f"{ident}"
        if cursor is not None:
            clauses.append(f"{ident} > ?")
            params.append(cursor[-1])
    else:
        col = q(ask.sort)
        direction, beyond = ("DESC", "<") if ask.descending else ("ASC", ">")
        order = f"{col} {direction} NULLS LAST, {ident}"
        if cursor is not None:
            if len(cursor) != 2:
                raise ConfigError("the page cursor belongs to another sort; start again from "
                                  "the first page")
            value, last_id = cursor
            if value is None:
                clauses.append(f"({col} IS NULL AND {ident} > ?)")
                params.append(last_id)
            else:
                clauses.append(f"({col} {beyond} ? OR ({col} = ? AND {ident} > ?) "
                               f"OR {col} IS NULL)")
                params.extend([value, value, last_id])
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = (f"SELECT {select_list(meta)}, {ident} AS {q(ID)} FROM "
           f"{qualified(meta.physical)}{where} ORDER BY {order} LIMIT {int(ask.limit) + 1}")
    return sql, params


def read_page(store: Any, meta: Any, ask: PageQuery) -> tuple[list[dict[str, Any]], str | None]:
    """(rows, cursor of the next page or None)."""
    import duckdb

    from patterns.graph.manifest import jsonable
    from patterns.sdk.table import records_of

    sql, params = page_sql(meta, ask)
    try:
        rows = store.arrow(sql, params or None).to_pylist()
    except (duckdb.ConversionException, duckdb.BinderException) as exc:
        # a filter value (or a cursor's) that does not cast to the column's type
        raise ConfigError(f"cannot filter table '{meta.name}' on '{ask.where}' with "
                          f"{ask.value!r}: {str(exc).splitlines()[0]}") from None
    more = len(rows) > ask.limit
    rows = rows[:ask.limit]
    following = None
    if more:
        last = rows[-1]
        ident = jsonable(last[ID])
        following = encode_cursor([jsonable(last[ask.sort]), ident] if ask.sort else [ident])
    for row in rows:
        row.pop(ID, None)
        for key, value in row.items():
            if isinstance(value, str) and len(value) > MAX_CELL:
                row[key] = (f"{value[:MAX_CELL]}… (cut: {len(value):,} characters in all; "
                            f"download the table for the whole value)")
    return jsonable(records_of(rows, meta.json_columns())), following
