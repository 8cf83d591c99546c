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
