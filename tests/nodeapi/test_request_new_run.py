"""Item 10: a run that requests a new run and then raises still gets that run, after the
requested wait; what it wrote is rolled back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from patterns.engine.reactive import ReactivePass
from tests.conftest import AppRunner

RATE_LIMITED = {"graph.yml": """
    title: Rate limited import
    functions:
      - node_file: fetch.py
    stores:
      - table: pages
""", "fetch.py": """
    from pathlib import Path
    from patterns import State, Table
    log = Path(__file__).parent / "attempts.log"  # (outside the store: not rolled back)
    with log.open("a") as f:
        f.write("x")
    attempt = len(log.read_text())
    state = State()
    state.set_value("runs_seen", state.get_value("runs_seen", 0) + 1)
    Table("pages", "w").append({"attempt": attempt, "runs_seen": state.get_value("runs_seen")})
    if attempt == 1:
        state.request_new_run(wait_atleast_seconds=1.5)
        raise RuntimeError("429 Too Many Requests: retry later")
"""}


def test_requested_run_comes_after_a_failure_and_the_failed_run_rolls_back(
        original_app: Callable[[dict[str, str]], AppRunner]) -> None:
    app = original_app(RATE_LIMITED)
    result = ReactivePass(app.engine).run(only=app.app.node("fetch"))
    first, second = result.runs
    assert first.status == "failed" and "429" in (first.error or "")
    assert second.status == "succeeded" and second.trigger == "continuation"
    assert second.started_at is not None and first.ended_at is not None
    assert (second.started_at - first.ended_at).total_seconds() >= 1.5
    # the failed run's row and state change were rolled back
    assert [(r["attempt"], r["runs_seen"]) for r in app.rows("pages")] == [(2, 1)]


def test_under_serve_the_requested_run_replaces_the_retry(tmp_path: Path) -> None:
    from tests.server.conftest import write_app
    from tests.server.test_scheduler import Served

    files = {"fetch.py": RATE_LIMITED["fetch.py"]}
    graph = """
        title: Rate limited import
        functions:
          - node_file: fetch.py
            trigger: manual
            settings:
              retries: {count: 3, backoff_seconds: 0.1}
        stores:
          - table: pages
    """
    served = Served(write_app(tmp_path / "served", graph, files))
    scheduler = served.start()
    try:
        assert served.engine is not None
        scheduler.trigger(served.engine.app.node("fetch.py"))
        first, second = served.wait_for(
            lambda: (r := served.runs()) and len(r) == 2 and r[1].status == "succeeded" and r)
        assert (first.status, first.trigger) == ("failed", "manual")
        assert second.trigger == "continuation"  # (not a retry 0.1 s later)
        assert (second.started_at - first.ended_at).total_seconds() >= 1.5
        assert len(served.runs()) == 2
    finally:
        served.stop()
