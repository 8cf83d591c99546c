"""Read a CSV, Parquet or JSON file (relative paths: from the app folder) into ``records``."""

from pathlib import Path

import pandas as pd

from patterns import Parameter, Table
from patterns.starter_components.file_formats import format_of

path = Parameter("path", type=str, description="The file to import.")
kind = Parameter("format", type=str, default="auto",
                 description="auto (from the extension), csv, parquet, json or jsonl.")
records = Table("records", "w")

if not Path(path).is_file():
    raise FileNotFoundError(f"no file {path!r} (relative paths start at the app folder "
                            f"{Path.cwd()})")
fmt = format_of(path, kind)
if fmt == "csv":
    frame = pd.read_csv(path)
elif fmt == "parquet":
    frame = pd.read_parquet(path)
else:
    frame = pd.read_json(path, lines=fmt == "jsonl", orient=None if fmt == "jsonl" else "records")
records.replace(frame)
print(f"imported {len(frame)} record(s) from {path}")
