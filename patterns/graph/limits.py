"""Limits on what an app's files may be, so that a hostile or broken file costs a bounded
amount of time and memory to refuse (see docs/graph-yml.md, "Limits").

A file past a limit is a problem at its file (and line), like any other mistake in an app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from patterns.errors import Problem

#: Largest graph.yml read, in bytes.
MAX_GRAPH_BYTES: Final = 1 << 20
#: Largest node file (.py, .sql) read, in bytes.
MAX_NODE_FILE_BYTES: Final = 10 << 20
#: Most YAML aliases (``*name``) in one graph.yml.
MAX_YAML_ALIASES: Final = 100
#: Most values in graph.yml once its aliases are expanded (what validation walks).
MAX_YAML_NODES: Final = 100_000
#: Deepest nesting of lists and mappings in graph.yml, aliases expanded.
MAX_YAML_DEPTH: Final = 50
#: Longest node_file path, in characters.
MAX_PATH_CHARS: Final = 1024


def read_text_limited(path: Path, rel: str, limit: int, what: str,
                      node: str | None = None) -> tuple[str | None, list[Problem]]:
    """The UTF-8 text of ``path``, or None and a problem: unreadable, not UTF-8, larger than
    ``limit`` bytes, or holding a NUL byte."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        return None, [Problem(rel, None, f"cannot read {what}: {reason}",
                              "check that the file exists and can be read", node)]
    if len(data) > limit:
        return None, [Problem(rel, None, f"{what} is larger than {limit:,} bytes, the most "
                              f"Patterns reads", "make the file smaller (split it, or move "
                              "data out of it into a table)", node)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        return None, [Problem(rel, line, f"{what} is not UTF-8 text (byte "
                              f"{data[error.start]:#04x} at offset {error.start})",
                              "save it as UTF-8 text", node)]
    if "\0" in text:
        line = text[:text.index("\0")].count("\n") + 1
        return None, [Problem(rel, line, f"{what} holds a NUL byte (\\0)",
                              "remove the NUL byte; save the file as plain UTF-8 text", node)]
    return text, []
