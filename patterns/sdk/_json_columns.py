"""JSON columns read back as Python values, a column at a time.

A table's nested values travel as JSON text (``patterns.json_columns`` in the schema's
metadata). Parsing them is split in two: :func:`joined` does Arrow's part (every text of the
column joined into one JSON array, and a look for integers too long for orjson), which runs
in C without the GIL, so a read-ahead thread can do it while the node's loop works through
the batch before (see :mod:`patterns.sdk._read_ahead`); :func:`parsed` then makes the Python
values, by one ``loads`` of the whole array (304 ns a value instead of 1,107 for one call per
value).

The values are exactly what ``json.loads`` of each text gives: ``orjson`` (a third faster
again) is used unless a number of 19 digits or more may be in the column (orjson turns an
integer past 64 bits into a float), or it refuses the text (NaN, lone surrogates); then
``json`` parses. A column that does not join up (a value that is not one JSON text) is
parsed value by value, whose error names the value.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class JoinedJson:
    """A JSON column made ready to parse by :func:`joined`."""

    column: pa.Array | pa.ChunkedArray
    #: ``[text, text, ...]`` of every value (null as ``null``); None: they did not join up.
    text: str | None
    #: A run of 19 digits or more is somewhere in the column: parse with ``json``.
    long_number: bool


def joined(column: pa.Array | pa.ChunkedArray) -> JoinedJson:
    """Arrow's part of parsing ``column``: its texts joined into one array's text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        texts = pc.fill_null(column, "null")
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        lists = pa.ListArray.from_arrays(pa.array([0, len(texts)], pa.int32()), texts)
        text = pc.binary_join(lists, ",")[0].as_py()
        # (Arrow's regex engine looks for a long number at a sixth of the cost of Python's)
        long_number = bool(pc.any(pc.match_substring_regex(texts, "[0-9]{19}")).as_py())
    except pa.ArrowException:
        return JoinedJson(column, None, False)
    return JoinedJson(column, f"[{text}]", long_number)


def parsed(ready: JoinedJson) -> list[Any]:
    """The Python values of the column :func:`joined` made ready (null: None)."""
    n = len(ready.column)
    if ready.text is not None:
        loaders = _loaders()[-1:] if ready.long_number else _loaders()
        for loads in loaders:
            with contextlib.suppress(ValueError):
                values = loads(ready.text)
                if isinstance(values, list) and len(values) == n:
                    return values
    return [None if v is None else json.loads(v) for v in ready.column.to_pylist()]


def parse_column(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Every JSON text of ``column`` parsed (null: None), in this thread."""
    return parsed(joined(column))


@functools.cache
def _loaders() -> tuple[Callable[[str], Any], ...]:
    """``orjson.loads`` where installed, then ``json.loads``, which parses what orjson
    refuses to the values it always did."""
    try:
        import orjson
    except ImportError:
        return (json.loads,)
    return (orjson.loads, json.loads)
