"""Feedback on long work (issue 16, item 8): in a terminal, each running node's elapsed time
and rows written so far, the environment being built, a progress bar while a table is
exported; none of it when the output is piped."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.cli.conftest import ok, patterns
from tests.cli.terminal import in_terminal
from tests.engine.test_environments import make_wheel, offline

SLOW = """
import time
from patterns import Table

numbers = Table("numbers", "w")
for i in range(3):  # (a node ships its rows to the engine every 50,000, and at checkpoints)
    numbers.append([{"i": i * 60_000 + j} for j in range(60_000)])
    time.sleep(0.6)
print("done")
"""

BIG = """
from patterns import Table

Table("big", "w").append([{"i": i, "name": f"row {i}"} for i in range(ROWS)])
"""


def slow_app(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "graph.yml").write_text("title: Slow app\nfunctions:\n  - node_file: slow.py\n"
                                    "stores:\n  - table: numbers\n")
    (root / "slow.py").write_text(textwrap.dedent(SLOW))
    return root


@pytest.mark.parametrize("columns", [80, 200])
def test_running_nodes_show_elapsed_time_and_rows_written_live(tmp_path: Path,
                                                               columns: int) -> None:
    root = slow_app(tmp_path / "app")
    screen = in_terminal("run", root, columns=columns)
    assert screen.code == 0, screen.text
    live = re.findall(r"◌ slow\s+(\d+\.\d)s\s+([\d,]+) row\(s\) written", screen.raw)
    assert live, screen.raw
    seconds = [float(s) for s, _ in live]
    rows = [int(n.replace(",", "")) for _, n in live]
    assert seconds == sorted(seconds) and seconds[-1] >= 1.0  # the time goes on
    assert rows == sorted(rows) and 0 < rows[-1] <= 180_000  # rows as the engine gets them
    assert any(50_000 <= n < 180_000 for n in rows)  # (seen mid-run, not only at the end)
    assert re.search(r"slow\s+first run\s+succeeded\s+0\s+180,000", screen.text)
    piped = ok(patterns("run", root))
    assert "◌" not in piped.stdout + piped.stderr and "\x1b[" not in piped.stdout


def test_an_environment_being_built_shows_uv_progress(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tinypkg", "0.2", "VALUE = 'tiny 0.2'\n")
    root = tmp_path / "app"
    root.mkdir()
    (root / "requirements.txt").write_text(offline(wheels, "tinypkg==0.2"))
    (root / "hello.py").write_text("import tinypkg\nprint('value', tinypkg.VALUE)\n")
    (root / "graph.yml").write_text("requirements_file: requirements.txt\n"
                                    "functions:\n  - node_file: hello.py\n")
    home = {"PATTERNS_HOME": str(tmp_path / "home")}
    screen = in_terminal("run", root, columns=100, env=home)
    assert screen.code == 0, screen.text
    assert re.search(r"◌ building the environment \d+\.\ds: \S", screen.raw), screen.raw
    assert "value tiny 0.2" in screen.text
    piped_home = {"PATTERNS_HOME": str(tmp_path / "home2")}
    piped = ok(patterns("run", root, env=piped_home)).stdout
    assert "environment | building environment for requirements.txt" in piped  # the lines
    assert "◌" not in piped  # (no live display)


def test_exporting_a_big_table_shows_a_progress_bar(tmp_path: Path) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (root / "graph.yml").write_text("title: Big\nfunctions:\n  - node_file: big.py\n"
                                    "stores:\n  - table: big\n")
    (root / "big.py").write_text(textwrap.dedent(BIG).replace("ROWS", "300_000"))
    ok(patterns("run", root, "--quiet"))
    screen = in_terminal("table", "export", root, "big", "-o", tmp_path / "big.csv",
                         columns=100)
    assert screen.code == 0, screen.text
    seen = [int(n.replace(",", "")) for n in
            re.findall(r"exporting big: ([\d,]+) of 300,000 rows", screen.raw)]
    assert seen and seen[-1] == 300_000 and any(0 < n < 300_000 for n in seen), screen.raw
    assert "━" in screen.raw  # the bar
    assert "exported 300,000 row(s) of big (version 1)" in screen.text
    assert (tmp_path / "big.csv").read_text().count("\n") == 300_001

    piped = ok(patterns("table", "export", root, "big", "-o", tmp_path / "again.csv"))
    assert "exporting big:" not in piped.stderr and "━" not in piped.stderr
    assert "exported 300,000 row(s)" in piped.stderr
