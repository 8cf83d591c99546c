"""Read queries: table scans and stream passes, as Arrow record batch readers.

A stream's position is a :class:`~patterns.positions.StreamPosition` the SDK keeps and
commits with checkpoints. A *pass* delivers the rows committed in ``(lo, hi]`` sorted by
``(order_by, patterns_id)``; ``(v, id)`` is the last row delivered. When a pass is done, the next one covers ``(hi, last
id of the table]``. Because ids grow in commit order, a row committed late (whatever its
order value) lands in a later pass: delivered later, never skipped. A new table version (a
``replace`` or ``reset``) starts the stream over.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from patterns.positions import StreamPosition
from patterns.store.ids import id_key, id_ms
from patterns.store.model import ID_MS, TableMeta
from patterns.store.tables import SQL_TYPES, q, qualified

#: Rows per Arrow batch handed to readers.
BATCH_ROWS = 65_536
#: ``shared_keys`` of :func:`stream_sql` when it is not known which ids share their block's
#: key with later ones: greater than every id, so every lower bound is inclusive.
EVERY_KEY_SHARED = "~"


def select_list(meta: TableMeta, *, with_hidden_id: bool = False) -> str:
    names = meta.visible_names()
    if (with_hidden_id or not names) and meta.id_column is None:
        names.append(meta.physical_id)  # (the stream's position; or: no field to select yet)
    return ", ".join(q(n) for n in names)


def scan_sql(meta: TableMeta, physical: str | None = None, limit: int | None = None,
             offset: int | None = None) -> str:
    sql = (f"SELECT {select_list(meta)} FROM {qualified(physical or meta.physical)} "
           f"ORDER BY {q(meta.physical_id)}")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    if offset:
        sql += f" OFFSET {int(offset)}"
    return sql


def next_pass(meta: TableMeta, position: StreamPosition | None, order_by: str | None,
              starting_value: Any = None) -> StreamPosition:
    """The position to read from next: the pass in progress, or a new one."""
    if position is not None and position.after is not None:  # stream.seek(value)
        position = StreamPosition(version=meta.version, done=True, gt=position.after)
    if position is None or position.version != meta.version:
        position = StreamPosition(version=meta.version, done=True, floor=starting_value)
    if not position.done:
        return position  # finish the pass in its own order; a new order_by applies from the next
    column = meta.column(order_by) if order_by else None
    return replace(position, lo=position.hi, hi=meta.last_id, v=None, id=None, done=False,
                   started=False, order_by=order_by, kind=column.kind if column else None)


def pass_is_empty(pos: StreamPosition) -> bool:
    return pos.hi is None or pos.hi == pos.lo


def stream_sql(meta: TableMeta, pos: StreamPosition, *, by_ms: bool = True,
               shared_keys: str | None = EVERY_KEY_SHARED,
               in_storage_order: bool = False) -> tuple[str, list[Any]]:
    """The query of a pass from ``pos`` on. With ``by_ms`` (DuckDB), the key of the id's
    block (:data:`~patterns.store.model.ID_MS`) bounds the pass first: DuckDB skips the row
    groups outside it by their zone maps (a text column's keep only an 8-byte prefix, which
    ids committed in the same second share); the ids themselves then decide exactly.
    PostgreSQL finds the range by its primary key's index instead.

    ``shared_keys`` is the last id that may share its key with later ids (made before
    blocks had keys of their own; None: no id does): a finished pass ``lo`` after it
    starts strictly after ``lo``'s key, so a pass never reads the commit before it.

    ``in_storage_order``: the pass's rows are stored in id order (DuckDB:
    :func:`~patterns.store.tables.stored_in_order`), so a pass in id order reads them as they
    lie, with no sort before its first row."""
    idc = q(meta.physical_id)
    where: list[str] = []
    params: list[Any] = []
    if by_ms and pos.hi is not None:
        where.append(f"{q(ID_MS)} <= ?")
        params.append(id_key(pos.hi))  # (an id's key is at least its millisecond)
        mid_pass = pos.started and pos.order_by is None
        after = pos.id if mid_pass else pos.lo
        if after is not None:
            if shared_keys is not None and after <= shared_keys:
                where.append(f"{q(ID_MS)} >= ?")  # (rows of later commits may share it)
                params.append(id_ms(after))
            else:
                # Every later block has a greater key; a finished pass ends on its table's
                # last id, so nothing after it shares its block.
                where.append(f"{q(ID_MS)} >= ?" if mid_pass else f"{q(ID_MS)} > ?")
                params.append(id_key(after))
    where.append(f"{idc} <= ?")
    params.append(pos.hi)
    if pos.lo is not None:
        where.append(f"{idc} > ?")
        params.append(pos.lo)
    order_by = pos.order_by
    if order_by is not None and meta.column(order_by) is None and order_by != meta.id_column:
        from patterns.errors import NodeError

        fields = ", ".join(meta.visible_names())
        raise NodeError(f"table {meta.name!r} has no field {order_by!r} to order a stream by; "
                        f"its fields are: {fields}")
    ocol = q(order_by) if order_by else None
    kind = pos.kind
    column = meta.column(order_by) if order_by else None
    if ocol and kind and column is not None and column.kind != kind:
        # The column widened since this pass began: keep the pass's order by reading the
        # values as they were (every row of the pass was committed before the change).
        ocol = f"TRY_CAST({ocol} AS {SQL_TYPES[kind]})"
    if pos.floor is not None:  # as_stream(starting_value=...): inclusive
        where.append(f"{ocol or idc} >= ?")
        params.append(pos.floor)
    if pos.gt is not None:  # stream.seek(value): strictly greater
        where.append(f"{ocol or idc} > ?")
        params.append(pos.gt)
    if pos.started:
        if ocol is None:
            where.append(f"{idc} > ?")
            params.append(pos.id)
        elif pos.v is None:
            where.append(f"({ocol} IS NULL AND {idc} > ?)")
            params.append(pos.id)
        else:
            where.append(f"({ocol} > ? OR {ocol} IS NULL OR ({ocol} = ? AND {idc} > ?))")
            # (a parameter compares in the column's type: ISO text binds to timestamps)
            params += [pos.v, pos.v, pos.id]
    order = f"{ocol} NULLS LAST, {idc}" if ocol else idc
    sorted_by = "" if in_storage_order and not ocol else f" ORDER BY {order}"
    sql = (f"SELECT {select_list(meta, with_hidden_id=True)} FROM {qualified(meta.physical)} "
           f"WHERE {' AND '.join(where)}{sorted_by}")
    return sql, params
