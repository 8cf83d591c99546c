"""Arrow rows as Python dicts, faster than ``to_pylist``, with the very same values.

``RecordBatch.to_pylist`` converts each column to Python values and then makes every row's
dict with a comprehension that looks each key up again. Here the columns are converted the
same way (``to_pylist`` per column; plain 64-bit integers, doubles and booleans without a
null through NumPy, which makes the same Python ints, floats and bools at a fraction of the
cost), and the dicts are made by a function compiled once per tuple of column names, a
dict display with the names as constants (CPython's ``BUILD_CONST_KEY_MAP``: one
instruction per row, no key lookups). JSON columns are parsed a column at a time and go in
as their parsed values; records stay plain ``dict`` objects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

#: Above this many columns the dicts are made with ``dict(zip(...))`` instead of a compiled
#: function (a display of thousands of names is not worth compiling).
MAX_COMPILED_COLUMNS = 250

Maker = Callable[[Sequence[list[Any]]], list[dict[str, Any]]]


def rows(data: pa.Table | pa.RecordBatch,
         parsed: dict[str, list[Any]] | None = None) -> list[dict[str, Any]]:
    """The rows of ``data`` as dicts, as ``data.to_pylist()`` makes them; ``parsed``: the
    values to use for some columns instead (their JSON parsed), by name."""
    names = tuple(data.schema.names)
    columns = [parsed[name] if parsed and name in parsed else column_values(data.column(i))
               for i, name in enumerate(names)]
    return made(names, columns, data.num_rows)


def made(names: tuple[str, ...], columns: Sequence[list[Any]],
         num_rows: int) -> list[dict[str, Any]]:
    """The dicts of ``num_rows`` rows whose values are ``columns`` (one list a name)."""
    if not names:
        return [{} for _ in range(num_rows)]
    return _maker(names)(columns)


def column_values(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """The Python values of ``column``, exactly as ``column.to_pylist()`` gives them."""
    import pyarrow as pa

    kind = column.type
    if column.null_count == 0 and (kind == pa.int64() or kind == pa.float64()
                                   or kind == pa.bool_()):
        values: list[Any] = column.to_numpy(zero_copy_only=False).tolist()
        return values
    return column.to_pylist()  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=256)
def _maker(names: tuple[str, ...]) -> Maker:
    """A function making each row's dict from the columns' values (``names``: their keys)."""
    if len(names) > MAX_COMPILED_COLUMNS or len(set(names)) != len(names):
        # (with two columns of one name, the later one wins, as in to_pylist)
        return lambda columns: [dict(zip(names, row, strict=True))
                                for row in zip(*columns, strict=True)]
    values = [f"v{i}" for i in range(len(names))]
    display = ", ".join(f"{name!r}: {value}" for name, value in zip(names, values, strict=True))
    unpack = ", ".join(values) + ("," if len(values) == 1 else "")
    source = (f"def make(columns):\n"
              f"    return [{{{display}}} for {unpack} in zip(*columns, strict=True)]\n")
    scope: dict[str, Any] = {}
    exec(compile(source, "<patterns rows>", "exec"), scope)  # names are repr'd: no code
    maker: Maker = scope["make"]
    return maker
