"""Table rows as a user reads them: JSON lines, CSV, a terminal table, Parquet.

A :class:`Scan` reads one version of a table (the current one, or an older one that is
still kept) in the order rows were committed. Rows arrive as Arrow record batches and are
written out one batch at a time, so exporting a large table takes the memory of one batch.
JSON lines carry real JSON: nested (JSON) columns as objects and lists, datetimes, dates and
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
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from patterns.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.table import Table as RichTable

    from patterns.store.duckdb import DuckDBStore
    from patterns.store.model import TableMeta

FORMATS = ("csv", "jsonl", "parquet")


@dataclass(frozen=True)
class Scan:
    """What to read for one version of a table: the query, its columns, the JSON ones."""

    sql: str
    names: list[str]
    json_columns: list[str]
    version: int


def scan_of(store: DuckDBStore, meta: TableMeta, version: int | None = None,
            limit: int | None = None, offset: int | None = None) -> Scan:
    from patterns.store.reads import scan_sql

    if version is None or version == meta.version:
        return Scan(scan_sql(meta, limit=limit, offset=offset), meta.visible_names(),
                    meta.json_columns(), meta.version)
    versions = {v["version"]: v for v in store.versions(meta.name)}
    kept = ", ".join(str(v) for v, doc in versions.items() if doc["available"]) or "none"
    if version not in versions or not versions[version]["available"]:
        raise ConfigError(f"table '{meta.name}' has no version {version} to read; "
                          f"versions kept: {kept} (`patterns table versions` lists them)")
    return _old_scan(store, meta, str(versions[version]["physical"]), version, limit, offset)


def _old_scan(store: DuckDBStore, meta: TableMeta, physical: str, version: int,
              limit: int | None, offset: int | None) -> Scan:
    """An older version has the columns it had then: read them from the catalog."""
    from dataclasses import replace

    from patterns.store.columns import Column
    from patterns.store.migrations import DATA
    from patterns.store.reads import scan_sql

    with store.cursor() as cur:
        rows = cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [DATA, physical]).fetchall()
    platform = {meta.physical_id, meta.created_column}
    # Only whether a column is JSON matters for reading it back.
    columns = tuple(Column(str(n), "json" if kind == "JSON" else "text")
                    for n, kind in rows if n not in platform)
    old = replace(meta, physical=physical, columns=columns)
    return Scan(scan_sql(old, limit=limit, offset=offset), old.visible_names(),
                old.json_columns(), version)


def read_batches(store: DuckDBStore, sql: str) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Stream the result of ``sql`` in Arrow batches (one batch in memory at a time)."""
    from patterns.store.reads import BATCH_ROWS

    cur = store.cursor()
    reader = cur.sql(sql).to_arrow_reader(BATCH_ROWS)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        finally:
            cur.close()

    return reader.schema, batches()


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
