"""Table rows as a user reads them: JSON lines, CSV, a terminal table, Parquet.

Rows of one version of a table arrive, in the order they were committed, as Arrow record
batches (see :meth:`patterns.engine.door.Door.rows`) and are written out one batch at a
time, so exporting a large table takes the memory of one batch. JSON lines carry real JSON: nested (JSON) columns as objects and lists, datetimes, dates and
times in ISO 8601, bytes in base64. CSV holds the same values as text (nested values as
their JSON text).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.table import Table as RichTable

FORMATS = ("csv", "jsonl", "parquet")


def plain(value: Any) -> Any:
    """A value JSON can hold, the way it reads in ISO 8601 / JSON."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def pylists(batch: pa.RecordBatch) -> list[list[Any]]:
    """The columns of ``batch`` as Python lists.

    Timestamps with a time zone are converted here (as UTC), not by pyarrow, which would
    import pandas for its time zone objects: a sixth of a second on every command.
    """
    import pyarrow as pa

    columns = []
    for column in batch.columns:
        kind = column.type
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            naive = column.cast(pa.timestamp(kind.unit)).to_pylist()
            columns.append([v.replace(tzinfo=dt.UTC) if v is not None else None for v in naive])
        else:
            columns.append(column.to_pylist())
    return columns


def records(batch: pa.RecordBatch, json_columns: Sequence[str]) -> Iterator[dict[str, Any]]:
    """The rows of ``batch`` as JSON-ready dicts, nested columns parsed."""
    names = batch.schema.names
    nested = [name in json_columns for name in names]
    for row in zip(*pylists(batch), strict=True):
        yield {name: (json.loads(v) if is_json and isinstance(v, str) else plain(v))
               for name, is_json, v in zip(names, nested, row, strict=True)}


def cell(value: Any) -> str:
    """A value as CSV or terminal text (nested JSON columns stay JSON text)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(plain(value), ensure_ascii=False, separators=(",", ":"))
    shown = plain(value)
    return "" if shown is None else str(shown)


def write_jsonl(out: IO[str], batches: Iterable[pa.RecordBatch],
                json_columns: Sequence[str]) -> int:
    count = 0
    for batch in batches:
        for record in records(batch, json_columns):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_csv(out: IO[str], names: Sequence[str], batches: Iterable[pa.RecordBatch]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    count = 0
    for batch in batches:
        for row in zip(*pylists(batch), strict=True):
            writer.writerow([cell(v) for v in row])
            count += 1
    return count


def write_parquet(path: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> int:
    import pyarrow.parquet as pq

    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
            count += batch.num_rows
    return count


def rich_table(names: Sequence[str], batches: Iterable[pa.RecordBatch], *,
               title: str | None = None, width: int = 40) -> RichTable:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for name in names:
        table.add_column(escape(name), overflow="ellipsis", max_width=width)
    for batch in batches:
        for row in zip(*pylists(batch), strict=True):
            table.add_row(*(escape(cell(v)) if v is not None else "[dim]null[/]" for v in row))
    return table
