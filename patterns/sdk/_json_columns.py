"""JSON columns read back as Python values, a slice of a column at a time.

A table's nested values travel as JSON text (``patterns.json_columns`` in the schema's
metadata). Parsing them is split in two: :func:`joined` does Arrow's part (the texts of each
slice of ``step`` rows joined into one JSON array, and a look for integers too long for
orjson), which runs in C without the GIL, so a read-ahead thread can do it while the node's
loop works through the batch before (see :mod:`patterns.sdk._read_ahead`); :func:`parsed`
then makes the Python values of one slice, by one ``loads`` of its array (304 ns a value
instead of 1,107 for one call per value), straight from Arrow's buffer (no Python string of
the text is made). A stream parses a batch a slice at a time, just before its records are
handed out (:mod:`patterns.sdk._batch_records`); a table read, the whole column at once.

The values are exactly what ``json.loads`` of each text gives: ``orjson`` (a third faster
again) is used unless a number of 19 digits or more may be in the slice (orjson turns an
integer past 64 bits into a float), or it refuses the text (NaN, lone surrogates); then
``json`` parses. A slice that does not join up (a value that is not one JSON text) is
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
    """A JSON column made ready to parse by :func:`joined`, ``step`` rows at a time."""

    column: pa.Array | pa.ChunkedArray
    #: Rows per slice: slice ``k`` is rows ``k * step`` to ``(k + 1) * step``.
    step: int
    #: ``[text, text, ...]`` of every value of each slice (null as ``null``), one string a
    #: slice; None: they did not join up.
    texts: pa.Array | None
    #: A run of 19 digits or more is somewhere in the slice: parse it with ``json``.
    long_number: tuple[bool, ...]


def joined(column: pa.Array | pa.ChunkedArray, step: int | None = None) -> JoinedJson:
    """Arrow's part of parsing ``column``: the texts of each ``step`` rows (default: all)
    joined into one array's text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(column)
    step = max(1, step or n)
    try:
        texts = pc.fill_null(column, "null")
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        bounds = pa.array([*range(0, n, step), n] if n else [0, 0], pa.int32())
        slices = pc.binary_join(pa.ListArray.from_arrays(bounds, texts), ",")
        arrays = pc.binary_join_element_wise("[", slices, "]", "")
        # (Arrow's regex engine looks for a long number at a sixth of the cost of Python's;
        # the values are joined by commas, so a run of digits never spans two of them)
        long_number = pc.match_substring_regex(arrays, "[0-9]{19}").to_pylist()
    except pa.ArrowException:
        return JoinedJson(column, step, None, ())
    return JoinedJson(column, step, arrays, tuple(long_number))


def parsed(ready: JoinedJson, k: int = 0) -> list[Any]:
    """The Python values of slice ``k`` of the column :func:`joined` made ready (null:
    None)."""
    start = k * ready.step
    n = max(0, min(ready.step, len(ready.column) - start))
    if ready.texts is not None:
        text = memoryview(ready.texts[k].as_buffer())
        loaders = _loaders()[-1:] if ready.long_number[k] else _loaders()
        for loads in loaders:
            with contextlib.suppress(ValueError):
                values = loads(text if loads is not json.loads else text.tobytes())
                if isinstance(values, list) and len(values) == n:
                    return values
    return [None if v is None else json.loads(v)
            for v in ready.column.slice(start, n).to_pylist()]


def parse_column(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Every JSON text of ``column`` parsed (null: None), in this thread."""
    return parsed(joined(column))


@functools.cache
def _loaders() -> tuple[Callable[[Any], Any], ...]:
    """``orjson.loads`` where installed, then ``json.loads``, which parses what orjson
    refuses to the values it always did."""
    try:
        import orjson
    except ImportError:
        return (json.loads,)
    return (orjson.loads, json.loads)
