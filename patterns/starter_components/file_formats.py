"""The file formats the starter file components (file-import, file-export) read and write."""

from __future__ import annotations

from pathlib import Path

FORMATS = ("csv", "parquet", "json", "jsonl")


def format_of(path: str, given: str) -> str:
    """The format named, or the one the file's extension says (``auto``)."""
    if given and given != "auto":
        if given not in FORMATS:
            raise ValueError(f"format {given!r} is not one of auto, {', '.join(FORMATS)}")
        return given
    suffix = Path(path).suffix.lower().lstrip(".")
    found = {"csv": "csv", "parquet": "parquet", "pq": "parquet", "json": "json",
             "jsonl": "jsonl", "ndjson": "jsonl"}.get(suffix)
    if found is None:
        raise ValueError(f"cannot tell the format of {path!r} from its extension: set the "
                         f"parameter format to one of {', '.join(FORMATS)}")
    return found
