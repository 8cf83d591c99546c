"""Write the whole ``records`` table to a file (written aside, then moved into place)."""

import os
from pathlib import Path

from patterns import Parameter, Table
from patterns.starter_components.file_formats import format_of

path = Parameter("path", type=str, description="The file to write.")
kind = Parameter("format", type=str, default="auto",
                 description="auto (from the extension), csv, parquet, json or jsonl.")
records = Table("records")

fmt = format_of(path, kind)
frame = records.read_dataframe()
frame = frame.drop(columns=[c for c in frame.columns if c == "patterns_id"])
target = Path(path)
target.parent.mkdir(parents=True, exist_ok=True)
partial = target.with_name(f".{target.name}.partial")
if fmt == "csv":
    frame.to_csv(partial, index=False)
elif fmt == "parquet":
    frame.to_parquet(partial, index=False)
else:
    frame.to_json(partial, orient="records", lines=fmt == "jsonl", date_format="iso")
os.replace(partial, target)
print(f"exported {len(frame)} record(s) to {path}")
