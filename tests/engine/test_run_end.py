"""A run ends with its final checkpoint: one transaction records its work and its end. What
happens around that moment (a kill, a late request, a failing commit) must leave the record,
the tables and the scheduler's follow-up as they were decided, exactly once."""

from __future__ import annotations

import time
from typing import Any

import patterns.engine.dataplane as dataplane


def test_a_final_checkpoint_arriving_after_the_run_ended_changes_nothing(
        app_runner: Any, monkeypatch: Any) -> None:
    real = dataplane._checkpoint

    def late(session: Any, body: dict[str, Any]) -> Any:
        # Fault injection: the request is held up between staging its records and
        # committing, until the run's time limit has killed the process.
        if body.get("final"):
            time.sleep(2.5)
        return real(session, body)

    monkeypatch.setattr(dataplane, "_checkpoint", late)
    app = app_runner({"w.py": """
        from patterns import Table
        Table("out", "w").append({"n": 1})
    """}, ["out"], settings={"time_limit_seconds": 1})
    ends: list[str] = []
    record, _ = app.engine.run_node(app.app.node("w"), "manual",
                                    on_end=lambda cur, rec, s: ends.append(rec.status))
    assert record.status == "timed_out"
    time.sleep(2.5)  # the held-up request goes on now: it must be refused
    stored = app.stored_run(record.id)
    assert stored is not None and stored.status == "timed_out"
    assert ends == ["timed_out"], "the run's end was acted on twice"
    assert app.rows("out") == []  # rolled back as a whole: nothing half-committed
    with app.engine.store.read() as view:
        assert view.logs.exists(record.id)


def test_an_error_of_the_final_commit_is_not_blamed_on_the_last_appends(
        app_runner: Any) -> None:
    app = app_runner({"s.py": """
        from patterns import Table
        a = Table("a", "w")
        a.append({"n": 1, "j": {"x": 1}})
        a.flush()
        a.append({"n": float("nan"), "j": "s"})  # (refused when the two are committed)
        a.flush()
        Table("b", "w").append({"z": 1})
    """}, ["a", "b"])
    record = app.run_node("s")
    assert record.status == "failed"
    assert "NaN" in record.error and "'a'" in record.error
    assert "line 8" not in record.error  # line 8 appends to b, which did nothing wrong
    assert app.rows("a") == [] and app.rows("b") == []
