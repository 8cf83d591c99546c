"""A pipeline's stages overlap: a stream run that keeps finding new rows hands its output on
as it goes, and several stages run at once by default, whatever the number of cores."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from patterns.engine.reactive import MIN_WORKERS, ReactivePass


def _wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} did not appear in {seconds} s"
        time.sleep(0.01)


def test_a_stream_run_commits_what_it_did_before_a_pass_that_came_meanwhile(
        app_runner: Any, tmp_path: Path) -> None:
    ready, go = tmp_path / "ready", tmp_path / "go"
    app = app_runner({
        "first.py": """
            from patterns import Table
            Table("events", "w").append({"n": 0})
        """,
        "more.py": """
            from patterns import Table
            Table("events", "w").append([{"n": 1}, {"n": 2}])
        """,
        "relay.py": f"""
            import time
            from pathlib import Path
            from patterns import Table

            out = Table("out", "w")
            for r in Table("events").as_stream().consume_records():
                out.append({{"n": r["n"]}})
                if r["n"] == 0:  # rows come while this pass is read
                    Path({str(ready)!r}).write_text("x")
                    deadline = time.monotonic() + 60
                    while not Path({str(go)!r}).exists() and time.monotonic() < deadline:
                        time.sleep(0.01)
                    time.sleep(0.3)  # (past the shortest time between two such checkpoints)
        """}, ["events", "out"])
    assert app.run_node("first").status == "succeeded"
    app.reload()
    relay: list[Any] = []
    thread = threading.Thread(
        target=lambda: relay.append(app.engine.run_node(app.app.node("relay"), "manual")[0]))
    thread.start()
    try:
        _wait_for(ready)
        assert app.engine.run_node(app.app.node("more"), "manual")[0].status == "succeeded"
    finally:
        go.write_text("x")
        thread.join(120)
    (record,) = relay
    assert record.status == "succeeded" and record.checkpoints == 2
    # the first pass's output was committed (visible, waking readers) before the second
    # pass was delivered; every record exactly once
    added = app.engine.store.arrow(
        "SELECT rows_added FROM patterns_meta.commits WHERE table_name = 'out' "
        "ORDER BY seq").column("rows_added").to_pylist()
    assert added == [1, 2]
    assert sorted(r["n"] for r in app.rows("out")) == [0, 1, 2]


def test_a_stream_run_of_one_pass_commits_once(app_runner: Any) -> None:
    app = app_runner({
        "fill.py": """
            from patterns import Table
            Table("events", "w").append([{"n": i} for i in range(5)])
        """,
        "relay.py": """
            from patterns import Table
            out = Table("out", "w")
            for r in Table("events").as_stream().consume_records():
                out.append({"n": r["n"]})
        """}, ["events", "out"])
    assert app.run_node("fill").status == "succeeded"
    record = app.run_node("relay")
    assert record.status == "succeeded" and record.checkpoints == 1
    assert len(app.rows("out")) == 5


def test_more_stages_than_cores_run_at_once_by_default(app_runner: Any,
                                                       tmp_path: Path) -> None:
    """Each node waits until all of them have started: with fewer runs at once than nodes,
    the first ones would wait in vain (and fail)."""
    count = MIN_WORKERS - 1  # (three stages of a four-node pipeline, on any machine)
    node = """
        import time
        from pathlib import Path
        from patterns import Table

        Path({here!r}).write_text("x")
        deadline = time.monotonic() + 60
        while not all(Path(p).exists() for p in {all!r}):
            if time.monotonic() > deadline:
                raise SystemExit("the other stages did not start alongside this one")
            time.sleep(0.01)
        Table({table!r}, "w").append({{"ok": True}})
    """
    marks = [str(tmp_path / f"started{i}") for i in range(count)]
    app = app_runner({f"stage{i}.py": node.format(here=marks[i], all=marks, table=f"t{i}")
                      for i in range(count)}, [f"t{i}" for i in range(count)])
    app.reload()
    result = ReactivePass(app.engine).run()
    assert result.ok, [(r.node_id, r.error) for r in result.runs]
    assert [len(app.rows(f"t{i}")) for i in range(count)] == [1] * count
