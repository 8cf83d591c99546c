"""A few appended rows sent to DuckDB as the insert's parameters (DuckDB store).

A commit inserts a batch of rows from an Arrow table registered with the transaction's
cursor. For the few rows of a short run (a trivial run appends one record) registering and
dropping that table cost more than the insert itself: measured alone, 0.59 + 0.27 ms of CPU
beside an insert of 1.0 ms, where the same row inserted from a ``VALUES`` list of parameters
costs 0.8 ms in all. So up to :data:`SMALL_ROWS` rows whose every column is of a type a
parameter carries exactly (integers, floats, booleans, text, nothing but None) are inserted
from a ``VALUES`` list instead, each parameter cast to the type DuckDB gives the Arrow
column: the insert's statement reads the same columns, with the same types, as it would
from the Arrow table.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

#: At most this many rows go as parameters (more: the registered Arrow table is cheaper).
SMALL_ROWS = 16

#: The Arrow types whose values a parameter carries exactly, and the type DuckDB reads each
#: as from an Arrow table.
_SQL_TYPES: dict[pa.DataType, str] = {
    pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER",
    pa.int64(): "BIGINT", pa.uint8(): "UTINYINT", pa.uint16(): "USMALLINT",
    pa.uint32(): "UINTEGER", pa.uint64(): "UBIGINT", pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN", pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.null(): "VARCHAR",  # (a field only ever None so far: a NULL text casts to any type)
}


def as_values(data: pa.Table, quote: Any) -> tuple[str, tuple[Any, ...]] | None:
    """``data`` as a relation of SQL (a ``VALUES`` list under its column names, quoted by
    ``quote``) and its parameters, in row order; None if it has more than
    :data:`SMALL_ROWS` rows or a column of another type."""
    n = data.num_rows
    if not 0 < n <= SMALL_ROWS or not data.num_columns:
        return None
    types = []
    for field in data.schema:
        sql_type = _SQL_TYPES.get(field.type)
        if sql_type is None:
            return None
        types.append(sql_type)
    row = "(" + ", ".join(f"?::{t}" for t in types) + ")"
    names = ", ".join(quote(name) for name in data.column_names)
    params = tuple(value for values in zip(*(column.to_pylist() for column in data.columns),
                                           strict=True) for value in values)
    return f"(SELECT * FROM (VALUES {', '.join([row] * n)}) AS __patterns_rows({names}))", \
        params
