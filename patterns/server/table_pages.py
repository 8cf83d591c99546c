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
from typing import TYPE_CHECKING, Any

from patterns.errors import ConfigError, DataError

if TYPE_CHECKING:
    from patterns.store.interface import Transaction
    from patterns.store.model import TableMeta

ID = "__patterns_page_id"
RANK = ID + "_rank"  # (patterns.store.page_orders.RANK_SUFFIX)
#: Text longer than this is cut in a page (a 5 MB cell would make every page of its table
#: megabytes); the download has it whole.
MAX_CELL = 10_000


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
    plain = [v for v in values if not isinstance(v, dict)] if isinstance(values, list) else None
    if plain is None or len(plain) not in (1, 2) or len(values) - len(plain) > 1:
        raise ConfigError("the page cursor is not one this server gave; start again from "
                          "the first page")
    return list(values)


def read_page(view: Transaction, meta: TableMeta, ask: PageQuery
              ) -> tuple[list[dict[str, Any]], str | None]:
    """(rows, cursor of the next page or None)."""
    from patterns.graph.manifest import jsonable
    from patterns.sdk.table import records_of
    from patterns.store.interface import PageRequest

    request = PageRequest(sort=ask.sort, descending=ask.descending, where=ask.where,
                          op=ask.op, value=ask.value,
                          after=decode_cursor(ask.after) if ask.after else None,
                          limit=ask.limit)
    try:
        rows = view.page(meta, request, ID).to_pylist()
    except DataError as exc:
        # a filter value (or a cursor's) that does not cast to the column's type
        raise ConfigError(f"cannot filter table '{meta.name}' on '{ask.where}' with "
                          f"{ask.value!r}: {exc}") from None
    more = len(rows) > ask.limit
    rows = rows[:ask.limit]
    following = None
    if more:
        last = rows[-1]
        ident = jsonable(last[ID])
        values = [jsonable(last[ask.sort]), ident] if ask.sort else [ident]
        rank = last.get(RANK)
        if rank:  # (the place of the next row in the store's kept order of a big table)
            token, at = str(rank).split(":")
            values.append({"at": int(at) + 1, "of": token})
        following = encode_cursor(values)
    for row in rows:
        row.pop(ID, None)
        row.pop(RANK, None)
        for key, value in row.items():
            if isinstance(value, str) and len(value) > MAX_CELL:
                row[key] = (f"{value[:MAX_CELL]}… (cut: {len(value):,} characters in all; "
                            f"download the table for the whole value)")
    return jsonable(records_of(rows, meta.json_columns())), following
