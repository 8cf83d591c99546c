"""Appended records are shipped while node code goes on appending (patterns/sdk/_sender.py):
the engine still gets them in order, reads see them, and a failing node commits none."""

from __future__ import annotations

from typing import Any

BOTH = """
from patterns import Table

a = Table("a", "w")
b = Table("b", "w")
for i in range(130_000):
    a.append({"n": i})
    if i % 2:
        b.append({"n": i})
    if i == 70_000:
        # A read after a batch went off in the background sees it (and all before it).
        a.append({"n": -1, "count": a.record_count})
"""


def test_records_shipped_in_the_background_commit_in_order_and_reads_see_them(
        app_runner: Any) -> None:
    app = app_runner({"both.py": BOTH}, ["a", "b"])
    assert app.run_node("both").status == "succeeded"
    rows = app.rows("a")  # in patterns_id order
    assert [r["n"] for r in rows] == [*range(70_001), -1, *range(70_001, 130_000)]
    assert rows[70_001]["count"] == 70_001
    assert [r["n"] for r in app.rows("b")] == list(range(1, 130_000, 2))


LISTS = """
from patterns import Table

t = Table("items", "w")
rows = [{"n": i} for i in range(12_000)]
t.append(rows)  # a long list with nothing buffered: converted as it is
rows.clear()  # the node's list, reused: what was appended stays appended
t.append({"n": -1})
rows.extend({"n": 100_000 + i} for i in range(15_000))
t.append(rows)  # after a buffered record: both in order
rows[0]["n"] = -2  # (changing a record after its append changes nothing stored)
same = Table("items", "w")  # a second handle on the port: one buffer, in call order
for i in range(25_000):
    (t if i % 3 else same).append({"n": 200_000 + i})
"""


def test_long_lists_are_appended_in_order_and_as_they_were_at_the_append(
        app_runner: Any) -> None:
    app = app_runner({"lists.py": LISTS}, ["items"])
    assert app.run_node("lists").status == "succeeded"
    assert [r["n"] for r in app.rows("items")] == \
        [*range(12_000), -1, *range(100_000, 115_000), *range(200_000, 225_000)]


FAILING = """
from patterns import Table

t = Table("items", "w")
for i in range(120_000):
    t.append({"n": i})
raise RuntimeError("the node gave up")
"""


def test_a_node_failing_with_a_batch_in_flight_commits_nothing(app_runner: Any) -> None:
    app = app_runner({"failing.py": FAILING}, ["items"])
    record = app.run_node("failing")
    assert record.status == "failed"
    assert "the node gave up" in f"{record.error}"
    assert app.rows("items") == []


ENGINE_POOL = """
import sys
from pathlib import Path

import pyarrow as pa

from patterns.engine.engine import Engine
from patterns.graph.loader import load_app

root = Path(sys.argv[1])
root.mkdir()
(root / "graph.yml").write_text("title: Pool\\n")
with Engine(load_app(root)):
    print(pa.default_memory_pool().backend_name)
"""


def test_the_engine_stages_and_commits_arrow_data_from_the_system_allocator(
        tmp_path: Any) -> None:
    """(mimalloc, pyarrow's default, cost a fresh engine's first 1M-record commit 0.6-1.9 s
    of page clearing in the kernel.) A pool the user chose is kept."""
    import os
    import subprocess
    import sys

    def pool(name: str, **env: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", ENGINE_POOL, str(tmp_path / name)],
            env={**{k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"},
                 "PATTERNS_HOME": str(tmp_path / "home"), **env},
            capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    assert pool("default") == "system"
    assert pool("chosen", ARROW_DEFAULT_MEMORY_POOL="mimalloc") == "mimalloc"
