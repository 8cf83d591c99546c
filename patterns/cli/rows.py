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
    from rich.console import Console
    from rich.text import Text

    from patterns.cli.render import Col

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


NUMERIC_KINDS = ("int", "float")


def print_records(console: Console, names: Sequence[str], kinds: Sequence[str],
                  batches: Iterable[pa.RecordBatch], *, vertical: bool | None = None) -> int:
    """Rows as a table (one style with every command's, see :mod:`patterns.cli.render`), each
    column's type under its name; or, with ``vertical`` (by default: when a row is wider
    than the terminal), one block per row, each value whole. The number of rows printed."""
    from rich.text import Text

    from patterns.cli.render import TEXT_MAX, Col, is_piped, print_table

    records = [[Text("null", style="dim") if v is None else Text(cell(v)) for v in row]
               for batch in batches for row in zip(*pylists(batch), strict=True)]
    columns = [Col(name, "number" if kind in NUMERIC_KINDS else "text", note=kind)
               for name, kind in zip(names, kinds, strict=True)]
    widest = [max([len(c.name), len(c.note)] + [r[i].cell_len for r in records])
              for i, c in enumerate(columns)]
    natural = sum(min(w, TEXT_MAX if c.kind == "text" else w) + 2
                  for w, c in zip(widest, columns, strict=True))
    piped = is_piped(console)
    if vertical is None:
        vertical = not piped and natural > console.width
    if not vertical:
        print_table(console, columns, records)
        cut = natural > console.width or any(
            w > TEXT_MAX for w, c in zip(widest, columns, strict=True) if c.kind == "text")
        if cut and not piped:
            console.print(Text("values are cut to fit: --vertical shows them whole",
                               style="dim"))
        return len(records)
    _print_vertical(console, columns, records)
    return len(records)


def _print_vertical(console: Console, columns: Sequence[Col], records: list[list[Text]]
                    ) -> None:
    """One block per record: name, type and the whole value on a line (wrapped to fit)."""
    from rich.table import Table
    from rich.text import Text

    from patterns.cli.render import emit

    name_width = max((len(c.name) for c in columns), default=0)
    kind_width = max((len(c.note) for c in columns), default=0)
    for n, record in enumerate(records, 1):
        console.print(Text(f"── record {n} ", style="dim") + Text("─" * 10, style="dim"))
        grid = Table.grid(padding=(0, 2, 0, 0))
        grid.add_column(no_wrap=True, min_width=name_width, style="bold")
        grid.add_column(no_wrap=True, min_width=kind_width, style="dim")
        grid.add_column(overflow="fold")
        for col, value in zip(columns, record, strict=True):
            grid.add_row(col.name, col.note, value)
        emit(console, grid)
