"""`patterns run` when the store's disk fills up: one clear line, exit 1, the data unchanged.

The disk is "full" for the engine through RLIMIT_FSIZE (no file may grow past a size), which
needs no privileges; DuckDB then fails to write exactly as on a full disk."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import textwrap
from pathlib import Path

from tests.cli.conftest import COMMAND, jsonl, ok, patterns

GRAPH = """
title: Full disk
functions:
  - node_file: fill.py
    id: fill0001
stores:
  - table: rows
"""

FILL = """
import os
from patterns import Table
rows = Table("rows", "w")
count = int(os.environ.get("ROWS", "10"))
for start in range(0, count, 2000):
    rows.append([{"i": i, "pad": "x" * 1000 + str(i)} for i in range(start, start + 2000)])
print("appended", count)
"""


def test_a_full_disk_fails_the_run_with_one_clear_line_and_keeps_the_data(
        tmp_path: Path) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (root / "graph.yml").write_text(textwrap.dedent(GRAPH))
    (root / "fill.py").write_text(textwrap.dedent(FILL))
    ok(patterns("run", root, env={"ROWS": "2000"}))
    store = root / ".patterns" / "store.duckdb"
    limit = store.stat().st_size + 2_000_000

    def full_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run([*COMMAND, "run", str(root)], capture_output=True, text=True,
                            env={**os.environ, "ROWS": "40000", "NO_COLOR": "1",
                                 "COLUMNS": "200"},
                            preexec_fn=full_disk, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert "the store's disk is full" in output, output
    # (the summary table's row of the run, its error whole: the output is piped)
    (summary,) = [line for line in result.stdout.splitlines()
                  if re.match(r"fill\s+\S.*\bfailed\b", line)]
    assert "disk is full" in summary, output
    # The table holds exactly what it held, and with room again the app runs.
    rows = jsonl(ok(patterns("table", "show", root, "rows", "--format", "jsonl",
                             "--limit", "100000")).stdout)
    assert len(rows) == 2000
    ok(patterns("run", root, env={"ROWS": "2000"}))
