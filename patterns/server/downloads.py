"""A table's rows as a file to download: CSV (with a header), JSON lines or Parquet, written
one Arrow batch at a time (a big table never sits in memory whole)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


def write_rows(reader: pa.RecordBatchReader, fmt: str, path: Path,
               json_columns: tuple[str, ...] | list[str] = ()) -> int:
    """Write ``reader``'s rows to ``path`` as ``fmt`` (csv, jsonl, parquet); how many."""
    count = 0
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetWriter(str(path), reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                count += batch.num_rows
    elif fmt == "csv":
        import csv

        import pyarrow.csv as pacsv

        with path.open("wb") as out:
            header = io.StringIO()  # (quoted only where needed, as the rows are)
            csv.writer(header, lineterminator="\n").writerow(reader.schema.names)
            out.write(header.getvalue().encode())
            options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
            with pacsv.CSVWriter(out, reader.schema, write_options=options) as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    count += batch.num_rows
    else:
        with path.open("w", encoding="utf-8") as out:
            for batch in reader:
                for record in batch.to_pylist():
                    out.write(json.dumps(_parsed(record, json_columns), default=_text,
                                         ensure_ascii=False) + "\n")
                    count += 1
    return count


def _parsed(record: dict[str, Any], json_columns: tuple[str, ...] | list[str]) -> dict[str, Any]:
    for name in json_columns:
        value = record.get(name)
        if isinstance(value, str):
            record[name] = json.loads(value)
    return record


def _text(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
