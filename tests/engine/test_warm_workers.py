"""Warm workers: runs are forked from a pre-imported process, yet behave like fresh ones."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from patterns.engine.launcher import ProcessLauncher


def log_lines(app: Any, record: Any) -> list[str]:
    text = app.log(record.id) or ""
    return [json.loads(line)[2] for line in text.splitlines()]


def worker_pid(app: Any) -> int:
    worker = app.engine.launcher._workers[sys.executable]
    return int(worker.proc.pid)


PROBE = """
    import atexit, json, os, sys, threading, time
    import patterns
    fresh = not hasattr(json, "_touched_by_a_run")
    json._touched_by_a_run = True  # a later run must not see this
    print("ppid", os.getppid())
    print("fresh", fresh)
    print("name", __name__)
    print("argv", os.path.basename(sys.argv[0]))
    print("cwd", os.getcwd())
    print("preloaded", "pyarrow" in sys.modules)
    print("stdin", repr(sys.stdin.read()))
    print("pgid-is-pid", os.getpgid(0) == os.getpid())
    atexit.register(lambda: print("atexit ran"))
    threading.Thread(target=lambda: (time.sleep(0.2), print("thread finished"))).start()
"""


def test_runs_are_forked_from_the_warm_worker_and_start_fresh(app_runner: Any) -> None:
    app = app_runner({"probe.py": PROBE}, [])
    first = app.run_node("probe")
    second = app.run_node("probe")
    assert first.status == second.status == "succeeded"
    for record in (first, second):
        lines = log_lines(app, record)
        assert f"ppid {worker_pid(app)}" in lines
        assert "fresh True" in lines, "a module change made by one run leaked into the next"
        assert "name __main__" in lines and "argv probe.py" in lines
        assert f"cwd {app.root}" in lines
        assert "preloaded True" in lines
        assert "stdin ''" in lines
        assert "pgid-is-pid True" in lines
        # Like interpreter shutdown: non-daemon threads are waited for, then atexit runs.
        assert lines.index("thread finished") < lines.index("atexit ran")


def test_cold_start_behaves_the_same(app_runner: Any) -> None:
    app = app_runner({"probe.py": PROBE}, [])
    app.engine.launcher.close()
    app.engine.launcher = ProcessLauncher(warm=False)
    record = app.run_node("probe")
    assert record.status == "succeeded"
    lines = log_lines(app, record)
    assert "fresh True" in lines and "name __main__" in lines and f"cwd {app.root}" in lines
    assert "stdin ''" in lines and "pgid-is-pid True" in lines
    assert lines.index("thread finished") < lines.index("atexit ran")
    assert f"ppid {os.getpid()}" in lines  # started by the engine itself


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_output_is_cut_into_the_lines_the_node_wrote(app_runner: Any, warm: bool) -> None:
    """The engine reads a run's pipes as bytes come: a line written in pieces, a line
    longer than one read, lines of both streams and a last line with no newline each
    come out whole, and the exit waits for nothing the node still had to say."""
    app = app_runner({"pieces.py": """
        import os, sys, time
        for piece in ("writ", "ten in ", "pieces"):
            sys.stdout.write(piece)
            sys.stdout.flush()
            time.sleep(0.05)
        print()
        print("x" * 200_000 + "end")
        os.write(2, b"raw err 1\\nraw ")
        time.sleep(0.05)
        os.write(2, b"err 2\\n")
        sys.stdout.write("no newline at the end")
    """}, [])
    if not warm:
        app.engine.launcher.close()
        app.engine.launcher = ProcessLauncher(warm=False)
    record = app.run_node("pieces")
    assert record.status == "succeeded", record.error
    lines = log_lines(app, record)
    assert lines[0] == "written in pieces"
    assert lines[1] == "x" * 200_000 + "end"
    assert sorted(lines[2:]) == ["no newline at the end", "raw err 1", "raw err 2"]


def test_exit_codes_and_signals_come_through_the_warm_worker(app_runner: Any) -> None:
    app = app_runner({
        "exits.py": "import sys\nsys.exit(3)\n",
        "hard.py": "import os\nos._exit(5)\n",
        "killed.py": "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n",
    }, [])
    exits = app.run_node("exits")
    assert (exits.status, exits.exit_code) == ("failed", 3)
    hard = app.run_node("hard")
    assert (hard.status, hard.exit_code) == ("failed", 5)
    killed = app.run_node("killed")
    assert killed.status == "failed" and killed.exit_code == -signal.SIGTERM
    assert "killed by signal 15" in killed.error


def test_a_dead_warm_worker_is_replaced(app_runner: Any) -> None:
    app = app_runner({"hello.py": "print('hello')\n"}, [])
    assert app.run_node("hello").status == "succeeded"
    old = worker_pid(app)
    os.kill(old, signal.SIGKILL)
    app.engine.launcher._workers[sys.executable].proc.wait()
    record = app.run_node("hello")
    assert record.status == "succeeded"
    assert "hello" in log_lines(app, record)
    assert worker_pid(app) != old


def test_a_worker_killed_during_a_run_fails_the_run_and_not_the_engine(
        app_runner: Any, tmp_path: Path) -> None:
    started = tmp_path / "started"
    app = app_runner({
        "sleepy.py": f"import os, time\nopen({str(started)!r}, 'w').write(str(os.getpid()))\n"
                     "time.sleep(30)\n",
        "hello.py": "print('hello')\n",
    }, [])
    import threading

    def kill_worker_once_started() -> None:
        while not started.exists():
            time.sleep(0.02)
        os.kill(worker_pid(app), signal.SIGKILL)

    killer = threading.Thread(target=kill_worker_once_started)
    killer.start()
    record = app.run_node("sleepy")
    killer.join()
    assert record.status == "failed"
    orphan = int(started.read_text())
    deadline = time.monotonic() + 5  # (SIGKILL takes a moment to land)
    while process_alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not process_alive(orphan), "the orphaned run was left running"
    assert app.run_node("hello").status == "succeeded"


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_closing_the_engine_ends_the_worker_and_its_runs(app_runner: Any) -> None:
    app = app_runner({"hello.py": "print('hello')\n"}, [])
    assert app.run_node("hello").status == "succeeded"
    worker = app.engine.launcher._workers[sys.executable]
    app.engine.launcher.close()
    assert worker.proc.poll() is not None
    assert not Path(worker.path).exists()


@pytest.mark.parametrize("warm", [True, False])
def test_a_broken_interpreter_fails_the_run_with_its_message(app_runner: Any, tmp_path: Path,
                                                             warm: bool) -> None:
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'no python here' >&2\nexit 9\n")
    broken.chmod(0o755)
    app = app_runner({"hello.py": "print('hello')\n"}, [])
    app.engine.launcher.close()
    app.engine.launcher = ProcessLauncher(str(broken), warm=warm)
    record = app.run_node("hello")
    assert record.status == "failed" and record.exit_code == 9
    assert "no python here" in log_lines(app, record)
    app.engine.launcher.close()


def test_processes_a_node_starts_inherit_neither_its_token_nor_its_secrets(
        app_runner: Any) -> None:
    from patterns.engine.secrets import SecretStore

    SecretStore().set("tok", "s3cret-value")
    app = app_runner({"spawn.py": """
        import subprocess, sys
        from patterns import Parameter
        token = Parameter("token", type=str)
        out = subprocess.run([sys.executable, "-c",
                              "import os; print(sorted(k for k in os.environ if 'PATTERNS' in k),"
                              " 's3cret' in str(os.environ))"],
                             capture_output=True, text=True).stdout.strip()
        print("child sees", out)
    """}, [], functions=[{"node_file": "spawn.py", "id": "spawn001",
                          "parameter_values": {"token": "${{ tok }}"}}])
    record = app.run_node("spawn001")
    assert record.status == "succeeded", record.error
    (line,) = [text for text in log_lines(app, record) if text.startswith("child sees")]
    assert "PATTERNS_RUN" not in line and line.endswith("False")


def test_a_dead_spare_is_replaced_and_the_run_still_starts(app_runner: Any) -> None:
    app = app_runner({"hello.py": "print('hello')\n"}, [])
    assert app.run_node("hello").status == "succeeded"
    zygote = worker_pid(app)
    deadline = time.time() + 10
    spares: list[int] = []
    while not spares and time.time() < deadline:  # the next run's process, forked ahead
        children = Path(f"/proc/{zygote}/task/{zygote}/children").read_text().split()
        spares = [int(pid) for pid in children]
        time.sleep(0.02)
    assert spares, "the warm worker keeps no spare process"
    for pid in spares:
        with contextlib.suppress(ProcessLookupError):  # (the last run's, ending)
            os.kill(pid, signal.SIGKILL)
    for _ in range(3):
        record = app.run_node("hello")
        assert record.status == "succeeded", record.error
        assert "hello" in log_lines(app, record)


def test_a_run_ends_when_its_process_does_even_if_a_child_holds_its_output(
        app_runner: Any, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild"
    app = app_runner({"leave.py": f"""
        import subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        print("leaving a child behind")
    """}, [], settings={"time_limit_seconds": 30})
    started = time.monotonic()
    record = app.run_node("leave")
    assert record.status == "succeeded" and record.exit_code == 0
    assert time.monotonic() - started < 20, "the run waited for the child holding its stdout"
    lines = log_lines(app, record)
    assert lines == ["leaving a child behind"]  # (the exit announcement is not output)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(pid), "the run's child outlived it"


def test_what_a_process_does_after_its_final_checkpoint_is_kept(app_runner: Any) -> None:
    """A run's end is recorded with its final checkpoint; output printed after it (atexit)
    still reaches the saved log, and a process that then fails is noted without undoing
    the committed run."""
    app = app_runner({
        "late.py": """
            import atexit, os
            from patterns import Table
            Table("out", "w").append({"n": 1})
            print("in the run")
            atexit.register(lambda: print("at exit"))
        """,
        "dies.py": """
            import atexit, os, sys
            from patterns import Table
            Table("out", "w").append({"n": 2})
            atexit.register(lambda: (sys.stdout.flush(), os._exit(4)))
        """,
    }, ["out"])
    late = app.run_node("late")
    assert (late.status, late.exit_code) == ("succeeded", 0)
    assert log_lines(app, late)[-2:] == ["in the run", "at exit"]
    dies = app.run_node("dies")
    assert (dies.status, dies.exit_code) == ("succeeded", 4)
    assert any("exit code 4 after its final checkpoint" in line for line in log_lines(app, dies))
    stored = app.stored_run(dies.id)
    assert stored is not None and (stored.status, stored.exit_code) == ("succeeded", 4)
    assert sorted(r["n"] for r in app.rows("out")) == [1, 2]


def test_runs_in_turn_keep_their_own_output_on_kept_threads(app_runner: Any) -> None:
    """The thread that serves a run's control channel is kept for the next runs
    (patterns/engine/run_threads.py), and its output is read by the thread that waits for
    it: each run's log still holds its own lines only, stderr included, and the engine's
    threads do not grow with the number of runs."""
    import threading

    app = app_runner({
        "speak.py": """
            import os, sys
            from patterns import State, Table
            n = State().get_value("n", 0) + 1
            State().set_value("n", n)
            print(f"run {n} out")
            os.write(2, f"run {n} raw stderr\\n".encode())  # (the stderr pipe itself)
            Table("out", "w").append({"n": n})
        """,
    }, ["out"])
    records = [app.run_node("speak") for _ in range(3)]
    threads = threading.active_count()
    records += [app.run_node("speak") for _ in range(12)]
    for n, record in enumerate(records, start=1):
        assert record.status == "succeeded", record.error
        assert sorted(log_lines(app, record)) == [f"run {n} out", f"run {n} raw stderr"]
    assert threading.active_count() <= threads + 1
    assert [r["n"] for r in app.rows("out")] == list(range(1, 16))


def private_dirty_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1])
    raise AssertionError(f"no Private_Dirty for {pid}")


def the_spare(zygote: int) -> int:
    """The warm worker's one child once the last run's process has gone: its spare."""
    deadline = time.time() + 10
    while time.time() < deadline:
        children = Path(f"/proc/{zygote}/task/{zygote}/children").read_text().split()
        if len(children) == 1:
            time.sleep(0.3)  # (what the spare does before waiting: the fork, the copies)
            return int(children[0])
        time.sleep(0.02)
    raise AssertionError("the warm worker has no spare alone")


def test_spares_copy_the_pages_runs_write_and_runs_stay_fresh(app_runner: Any) -> None:
    app = app_runner({"add.py": "from patterns import Table\n"
                                "import json\n"
                                "print('fresh', not hasattr(json, '_seen'))\n"
                                "json._seen = True\n"
                                "Table('out', 'w').append({'n': 1})\n"}, ["out"])
    first = app.run_node("add")
    assert first.status == "succeeded", first.error
    zygote = worker_pid(app)
    unwarmed = private_dirty_kb(the_spare(zygote))  # no run has reported yet
    for _ in range(5):  # the first runs report, later spares copy what they wrote
        record = app.run_node("add")
        assert record.status == "succeeded", record.error
        assert "fresh True" in log_lines(app, record)
    warmed = private_dirty_kb(the_spare(zygote))
    assert warmed > unwarmed + 1024, (unwarmed, warmed)  # over a MB copied ahead
    for _ in range(3):  # and a warmed spare's run behaves as any other
        record = app.run_node("add")
        assert record.status == "succeeded", record.error
        assert "fresh True" in log_lines(app, record)
    assert app.engine.store.count(app.engine.store.table("out")) == 9


def test_a_child_that_keeps_printing_is_killed_when_its_run_ends(
        app_runner: Any, tmp_path: Path) -> None:
    """The engine reads a run's output to its end before killing its group, but a child
    the node left writing to that output does not keep the run from ending: it is killed,
    and the node's own lines are all in the log, in order."""
    pid_file = tmp_path / "chatty"
    app = app_runner({"chatty.py": f"""
        import subprocess, sys
        # (one write per line: ``print`` writes a line and its newline apart, and a newline
        # that lands after the run's exit mark would be an empty line of the child's)
        child = subprocess.Popen([sys.executable, "-c",
                                  "import os, time\\nwhile True:\\n os.write(1, b'chatter\\\\n')\\n time.sleep(0.001)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        for n in range(3):
            print("node line", n)
    """}, [], settings={"time_limit_seconds": 30})
    started = time.monotonic()
    record = app.run_node("chatty")
    assert record.status == "succeeded" and record.exit_code == 0, record.error
    assert time.monotonic() - started < 20, "the run waited for the chatty child"
    own = [line for line in log_lines(app, record) if line != "chatter"]
    assert own == ["node line 0", "node line 1", "node line 2"]
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(pid), "the run's child outlived it"
