"""Runs as users see them: records, logs, time limits, state, reactive passes, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from patterns.engine.secrets import SecretStore


def logs(app: Any, record: Any) -> list[list[str]]:
    text = app.log(record.id) or ""
    return [json.loads(line) for line in text.splitlines()]


def test_output_is_captured_per_stream_with_secrets_masked(app_runner: Any) -> None:
    SecretStore().set("tok", "hunter22")
    app = app_runner({"talk.py": """
        import sys, logging
        from patterns import Parameter
        token = Parameter("token", type=str)
        print("hello", token)
        print("oops", file=sys.stderr)
        logging.warning("careful")
    """}, [], functions=[{"node_file": "talk.py", "id": "talk0001",
                           "parameter_values": {"token": "${{ tok }}"}}])
    record = app.run_node("talk0001")
    assert record.status == "succeeded"
    lines = [tuple(line[1:]) for line in logs(app, record)]
    assert ("stdout", "hello ****") in lines and ("stderr", "oops") in lines
    assert ("log", "careful", "WARNING") in lines
    assert "hunter22" not in json.dumps(lines)


def test_time_limit_kills_the_run_and_its_children_and_rolls_back(app_runner: Any,
                                                                 tmp_path: Path) -> None:
    marker = tmp_path / "child-alive"
    app = app_runner({"slow.py": f"""
        import subprocess, sys, time
        from patterns import Table
        subprocess.Popen([sys.executable, "-c",
                          "import time; time.sleep(3); open({str(marker)!r}, 'w').write('x')"])
        t = Table("out", "w")
        t.append({{"x": 1}})
        t.flush()
        time.sleep(30)
    """}, ["out"], settings={"time_limit_seconds": 1})
    record = app.run_node("slow")
    assert record.status == "timed_out"
    assert "time limit of 1 s" in record.error
    assert app.rows("out") == []
    import time

    time.sleep(3.5)
    assert not marker.exists(), "the node's child process outlived the run"


def test_state_commits_with_the_run_and_failed_runs_leave_it(app_runner: Any) -> None:
    app = app_runner({"count.py": """
        import datetime as dt
        from patterns import State, Parameter
        fail = Parameter("fail", type=bool, default=False)
        s = State()
        s.set_value("n", s.get_value("n", 0) + 1)
        s.set_value("at", dt.datetime(2024, 1, 2, 3, 4, 5))
        assert s.get_datetime("at") == dt.datetime(2024, 1, 2, 3, 4, 5)
        if fail:
            raise RuntimeError("no")
    """}, [])
    node = app.app.node("count")
    assert app.engine.run_node(node, "manual")[0].status == "succeeded"
    assert app.engine.run_node(node, "manual", {"fail": "true"})[0].status == "failed"
    assert app.engine.run_node(node, "manual")[0].status == "succeeded"
    state = app.state(node.id)
    assert state["n"] == 2 and state["at"] == "2024-01-02T03:04:05"


def test_node_option_runs_only_that_node_and_its_downstream(app_runner: Any) -> None:
    app = app_runner({
        "a.py": 'from patterns import Table\nTable("t1", "w").append({"x": 1})\n',
        "b.py": 'from patterns import Table\nfor r in Table("t1").as_stream():\n'
                '    Table("t2", "w").append(r)\n',
        "other.py": 'from patterns import Table\nTable("t3", "w").append({"x": 1})\n',
    }, ["t1", "t2", "t3"])
    result = app.run("a")
    assert [r.node_id for r in result.runs] == ["a", "b"]
    assert app.rows("t3") == [] and len(app.rows("t2")) == 1


def test_manual_nodes_run_only_when_asked(app_runner: Any) -> None:
    app = app_runner({"m.py": 'from patterns import Table\nTable("t", "w").append({"x": 1})\n'},
                     ["t"], functions=[{"node_file": "m.py", "id": "manual01",
                                        "trigger": "manual"}])
    assert app.run().runs == []
    assert [r.status for r in app.run("manual01").runs] == ["succeeded"]


def test_offline_reads_in_a_notebook(app_runner: Any, tmp_path: Path) -> None:
    app = app_runner({"w.py": 'from patterns import Table\nTable("t", "w").append({"x": 41})\n'},
                     ["t"])
    app.run()
    app.close()
    script = textwrap.dedent("""
        from patterns import Table
        t = Table("t")
        print(t.read()[0]["x"] + 1, len(t.read_dataframe()), t.record_count)
        try:
            Table("t", "w").append({"x": 1})
        except Exception as exc:
            print(type(exc).__name__, exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=app.root, capture_output=True,
                         text=True, env={**os.environ}, check=True).stdout
    assert out.splitlines()[0] == "42 1 1"
    assert "NodeError" in out and "read-only" in out


def test_patterns_run_cli_exit_code_summary_and_traceback(tmp_path: Path) -> None:
    from tests.conftest import write_app

    root = write_app(tmp_path / "app", {
        "good.py": 'from patterns import Table\nTable("t", "w").append({"x": 1})\n',
        "bad.py": "from patterns import State\nx = State()\n\n\ndef f():\n"
                  "    raise ValueError('bad value 7')\n\n\nf()\n",
    }, ["t"])
    cli = [sys.executable, "-m", "patterns.cli.main"]
    proc = subprocess.run([*cli, "run", str(root)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "bad value 7" in proc.stdout and "bad.py" in proc.stdout
    assert 'line 9, in <module>' in proc.stdout and 'line 6, in f' in proc.stdout
    assert "runpy" not in proc.stdout and "patterns/sdk" not in proc.stdout
    assert "succeeded" in proc.stdout and "failed" in proc.stdout
    proc = subprocess.run([*cli, "run", str(root), "--node", "good.py", "--json"],
                          capture_output=True, text=True)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and doc["ok"] and doc["runs"][0]["status"] == "succeeded"


def test_invalid_app_runs_nothing_and_lists_every_problem(tmp_path: Path) -> None:
    from tests.conftest import write_app

    root = write_app(tmp_path / "app", {"a.py": 'from patterns import Table\nTable("nope")\n'},
                     [], functions=[{"node_file": "a.py", "trigger": "every minute"}])
    proc = subprocess.run([sys.executable, "-m", "patterns.cli.main", "run", str(root)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "nothing was run" in proc.stderr
    assert "'nope'" in proc.stderr and "every minute" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (root / ".patterns").exists()


def test_failed_runs_are_retried_with_backoff(app_runner: Any) -> None:
    # State rolls back with a failed run, so the node counts its attempts on disk.
    app = app_runner({"flaky.py": """
        import pathlib
        from patterns import State
        n = len(list(pathlib.Path(".").glob("attempt-*")))
        if n < 2:
            pathlib.Path(f"attempt-{n}").write_text("x")
            raise RuntimeError(f"flaky {n}")
        State().set_value("done", True)
    """}, [], settings={"retries": {"count": 3, "backoff_seconds": 0.05}})
    result = app.run()
    assert [(r.trigger, r.status, r.attempt) for r in result.runs] == [
        ("first run", "failed", 1), ("retry", "failed", 2), ("retry", "succeeded", 3)]
    assert result.ok


def test_prints_and_traceback_keep_their_order(app_runner: Any) -> None:
    app = app_runner({"order.py": """
        import sys
        for i in range(50):
            print("out", i)
            print("err", i, file=sys.stderr)
        raise ValueError("last")
    """}, [])
    record = app.run_node("order")
    lines = [(stream, text) for _, stream, text in logs(app, record)]
    expected = [x for i in range(50) for x in (("stdout", f"out {i}"), ("stderr", f"err {i}"))]
    assert lines[:100] == expected
    assert lines[-1] == ("stderr", "ValueError: last")


def test_flooded_output_is_capped_with_a_note(app_runner: Any) -> None:
    from patterns.engine.launcher import MAX_LOG_BYTES

    app = app_runner({"flood.py": f"""
        for i in range({MAX_LOG_BYTES // 50}):
            print("x" * 100)
        print("the end")
    """}, [])
    record = app.run_node("flood")
    assert record.status == "succeeded"
    text = app.log(record.id) or ""
    assert len(text) < MAX_LOG_BYTES * 1.1
    assert "output cut" in text.splitlines()[-1] and "the end" not in text


def test_request_new_run_continues_after_a_delay_and_can_stay_quiet(app_runner: Any) -> None:
    import time

    app = app_runner({
        "pager.py": """
            from patterns import State, Table, Parameter
            quiet = Parameter("quiet", type=bool, default=False)
            s = State()
            page = s.get_value("page", 0)
            Table("pages", "w").append({"page": page})
            s.set_value("page", page + 1)
            if page < 2:
                s.request_new_run(trigger_downstream=not quiet, wait_atleast_seconds=0.3)
        """,
        "reader.py": """
            from patterns import Table
            for r in Table("pages").as_stream():
                Table("seen", "w").append(r)
        """,
    }, ["pages", "seen"])
    started = time.monotonic()
    result = app.run("pager")
    elapsed = time.monotonic() - started
    pager = [r for r in result.runs if r.node_id == "pager"]
    assert [r.trigger for r in pager] == ["manual", "continuation", "continuation"]
    assert elapsed >= 0.6  # two delays of 0.3 s were honoured
    assert len(app.rows("seen")) == 3

    quiet = app_runner({"pager.py": (app.root / "pager.py").read_text(),
                        "reader.py": (app.root / "reader.py").read_text()}, ["pages", "seen"],
                       functions=[{"node_file": "pager.py", "id": "pager", "trigger": "manual"},
                                  {"node_file": "reader.py", "id": "reader"}])
    assert quiet.run().runs[0].node_id == "reader"  # the reader's first run, on nothing
    quiet.engine.run_node(quiet.app.node("pager"), "manual", {"quiet": "true"})
    assert quiet.run().runs == []  # quiet rows wake nobody
    assert len(quiet.rows("pages")) == 1 and quiet.rows("seen") == []


def test_an_engine_failure_fails_the_run_instead_of_leaving_it_running(app_runner: Any) -> None:
    app = app_runner({"q.sql": "select 1 as n\n"}, ["out"], functions=[
        {"node_file": "q.sql", "id": "sql00001", "outputs": {"output_table": "out"}}])
    (app.root / "q.sql").unlink()  # gone between loading the app and running the node
    record, _ = app.engine.run_node(app.app.node("sql00001"), "manual")
    assert record.status == "failed"
    assert "could not be carried out" in record.error and "FileNotFoundError" in record.error
    stored = app.stored_run(record.id)
    assert stored is not None and stored.status == "failed"
    assert app.engine.running_runs() == []
