"""`patterns create node` registers a file that exists already; `patterns remove node|table`
takes one out of graph.yml (comments kept), asking before it empties a table's rows."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import failed, jsonl, ok, patterns

GRAPH = """\
# My app: a comment the edits keep
title: Remove app
functions:
  - node_file: gen.py   # writes numbers
    id: gen00001
stores:
  - table: numbers      # the numbers
"""

GEN = """\
from patterns import Table
Table("numbers", "w").append([{"n": i} for i in range(3)])
"""

EXISTING = """\
from patterns import Table
numbers = Table("numbers")
doubled = Table("doubled", "w")
for record in numbers.as_stream().consume_records():
    doubled.append({"n": record["n"] * 2})
"""


def make(root: Path) -> Path:
    root.mkdir()
    (root / "graph.yml").write_text(GRAPH)
    (root / "gen.py").write_text(GEN)
    return root


def test_create_node_registers_an_existing_file_with_its_tables(tmp_path: Path) -> None:
    root = make(tmp_path / "app")
    (root / "nodes").mkdir()
    (root / "nodes" / "double.py").write_text(EXISTING)
    out = ok(patterns("create", "node", "double.py", cwd=root / "nodes")).stdout
    assert "registered nodes/double.py" in out and "added table(s) doubled" in out
    assert (root / "nodes" / "double.py").read_text() == EXISTING  # never overwritten
    graph = (root / "graph.yml").read_text()
    assert graph.startswith("# My app: a comment the edits keep")
    assert "- node_file: nodes/double.py" in graph and "- table: doubled" in graph
    assert graph.count("- table: numbers") == 1
    ok(patterns("run", cwd=root))
    rows = jsonl(ok(patterns("table", "show", "doubled", "--format", "jsonl", cwd=root)).stdout)
    assert [r["n"] for r in rows] == [0, 2, 4]
    failed(patterns("create", "node", "nodes/double.py", cwd=root), "already a node")


def test_remove_node_and_table(tmp_path: Path) -> None:
    root = make(tmp_path / "app")
    (root / "double.py").write_text(EXISTING)
    ok(patterns("create", "node", "double.py", cwd=root))
    ok(patterns("run", cwd=root))

    refused = failed(patterns("remove", "table", "doubled", "-y", cwd=root),
                     "used by node double.py")
    assert "remove those nodes first" in refused
    out = ok(patterns("remove", "node", "double.py", cwd=root)).stdout
    assert "removed node double.py" in out and "double.py is kept" in out
    assert "doubled no longer used" in out
    assert (root / "double.py").exists()
    graph = (root / "graph.yml").read_text()
    assert "double.py" not in graph and "# writes numbers" in graph
    ok(patterns("validate", "--strict", cwd=root))

    # a table holding rows: asked first; no terminal and no -y changes nothing
    asked = failed(patterns("remove", "table", "doubled", cwd=root), "give -y")
    assert "no terminal" in asked
    assert "- table: doubled" in (root / "graph.yml").read_text()
    no = patterns("remove", "table", "doubled", cwd=root, input="n\n")
    assert no.returncode == 1 and "- table: doubled" in (root / "graph.yml").read_text()
    out = ok(patterns("remove", "table", "doubled", cwd=root, input="y\n")).stdout
    assert "removed table doubled from graph.yml and emptied its 3 row(s)" in out
    assert "- table: doubled" not in (root / "graph.yml").read_text()
    tables = {t["name"]: t for t in json.loads(ok(patterns("table", "list", "--json",
                                                           cwd=root)).stdout)}
    assert tables["doubled"]["rows"] == 0  # emptied; the old version stays readable
    old = ok(patterns("table", "show", "doubled", "--version", "1", "--format", "jsonl",
                      cwd=root)).stdout
    assert len(jsonl(old)) == 3

    failed(patterns("remove", "node", "gen.pi", cwd=root), "did you mean 'gen.py'?")
    ok(patterns("remove", "node", "gen00001", cwd=root))  # by id
    out = ok(patterns("remove", "table", "numbers", "--keep-data", cwd=root)).stdout
    assert "removed table numbers from graph.yml" in out and "emptied" not in out
    kept = json.loads(ok(patterns("table", "list", "--json", cwd=root)).stdout)
    assert {t["name"]: t["rows"] for t in kept}["numbers"] == 3
    graph = (root / "graph.yml").read_text()
    assert graph.startswith("# My app: a comment the edits keep") and "gen.py" not in graph
