"""Node code in the sandbox: real bubblewrap, real engine, real node processes trying each
attack of issue 14 §6 (and failing), and doing what nodes must still do."""

from __future__ import annotations

import json
import os
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from patterns.engine import sandbox as sandbox_module
from patterns.engine.engine import Engine
from patterns.engine.launcher import ProcessLauncher
from patterns.engine.sandbox import Sandbox
from patterns.engine.secrets import SecretStore
from patterns.graph.loader import load_app
from patterns.graph.model import App
from tests.conftest import wait_for, write_app

if not sandbox_module.available():
    # In CI the set-up installs bubblewrap: there, its absence is a failure, never a skip.
    if os.environ.get("CI"):
        raise RuntimeError(f"CI=true but the sandbox cannot start: {sandbox_module._probe()}")
    pytest.skip(f"no sandbox here: {sandbox_module._probe()}", allow_module_level=True)

#: Each attack records what happened as one record in its own table.
PROBE = """
import json, os
from patterns import Table

def attempt(action):
    try:
        return {"ok": True, "value": action()}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__ + ": " + str(exc)}

result = {}
"""


def node(body: str, table: str) -> str:
    return PROBE + textwrap.dedent(body) + \
        f"\nTable({table!r}, 'w').append({{'result': json.dumps(result)}})\n"


class Sandboxed:
    """An app whose node processes run in the sandbox, with its engine."""

    def __init__(self, root: Path, warm: bool = True) -> None:
        self.root = root
        self.app: App = load_app(root)
        self.engine = Engine(self.app, launcher=ProcessLauncher(
            warm=warm, sandbox=Sandbox(root)))

    def run(self, file: str, **params: Any) -> Any:
        record, _ = self.engine.run_node(self.app.node(file), "manual", params or None)
        return record

    def result(self, table: str) -> dict[str, Any]:
        rows = self.engine.store.arrow(
            f'SELECT result FROM main."{table}" ORDER BY patterns_id').to_pylist()
        return dict(json.loads(rows[-1]["result"]))

    def close(self) -> None:
        self.engine.close()


@pytest.fixture
def sandboxed(tmp_path: Path) -> Iterator[Callable[..., Sandboxed]]:
    apps: list[Sandboxed] = []

    def make(nodes: dict[str, str], stores: list[str], warm: bool = True,
             **kwargs: Any) -> Sandboxed:
        root = write_app(tmp_path / f"app{len(apps)}", nodes, stores, **kwargs)
        app = Sandboxed(root, warm=warm)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def host_processes(marker: str) -> list[int]:
    """Processes of this machine whose command line holds ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found




# ---------------------------------------------------------------------------- attacks
def test_node_code_cannot_see_secrets_the_store_or_other_apps(
        sandboxed: Callable[..., Sandboxed], tmp_path: Path, patterns_home: Path) -> None:
    SecretStore().set("api_key", "s3cret-value")  # makes the key file and the secrets file
    assert any(patterns_home.iterdir())
    other = write_app(tmp_path / "other-app", {"x.py": "print(1)\n"}, [])
    (other / "private.txt").write_text("another app's data")
    app = sandboxed({"attack.py": node(f"""
        home = {str(patterns_home)!r}
        result["home"] = attempt(lambda: os.listdir(home))
        result["key"] = attempt(lambda: [open(os.path.join(home, f), "rb").read()
                                         for f in os.listdir(home)])
        result["default_home"] = attempt(lambda: os.listdir(os.path.expanduser("~/.patterns")))
        result["store"] = attempt(lambda: open(".patterns/store.duckdb", "rb").read(16))
        result["patterns_dir"] = attempt(lambda: os.listdir(".patterns"))
        result["other_app"] = attempt(lambda: open({str(other / "private.txt")!r}).read())
        result["etc_shadow"] = attempt(lambda: open("/etc/shadow").read())
        result["platform_env"] = [k for k in os.environ if k.startswith("PATTERNS_")]
        """, "out")}, ["out"])
    record = app.run("attack.py")
    assert record.status == "succeeded", record.error
    result = app.result("out")
    for attack in ("home", "key", "default_home", "store", "other_app", "etc_shadow"):
        assert not result[attack]["ok"], (attack, result[attack])
    assert "FileNotFoundError" in result["store"]["error"]
    assert result["patterns_dir"] == {"ok": True, "value": []}  # an empty folder over it
    assert result["platform_env"] == []


def test_node_code_cannot_change_the_app(sandboxed: Callable[..., Sandboxed]) -> None:
    app = sandboxed({"attack.py": node("""
        def write(path):
            with open(path, "a") as f:
                f.write("# changed by a node\\n")
        result["graph"] = attempt(lambda: write("graph.yml"))
        result["other_node"] = attempt(lambda: write("victim.py"))
        result["new_file"] = attempt(lambda: write("new.py"))
        result["remove"] = attempt(lambda: os.remove("victim.py"))
        """, "out"), "victim.py": "print('victim')\n"}, ["out"])
    graph = (app.root / "graph.yml").read_text()
    record = app.run("attack.py")
    assert record.status == "succeeded", record.error
    result = app.result("out")
    for attack in ("graph", "other_node", "new_file", "remove"):
        assert not result[attack]["ok"] and "Read-only file system" in result[attack]["error"]
    assert (app.root / "graph.yml").read_text() == graph
    assert (app.root / "victim.py").read_text() == "print('victim')\n"
    assert not (app.root / "new.py").exists()


def test_a_run_sees_no_other_process_and_no_token_in_any_environment(
        sandboxed: Callable[..., Sandboxed]) -> None:
    app = sandboxed({
        "victim.py": """
            import time
            time.sleep(6)
            """,
        "attack.py": node("""
            from patterns.sdk._context import current_run
            token = current_run.get().client._token
            me = int(os.readlink("/proc/self"))  # (its pid in the worker's namespace)
            pids = [p for p in os.listdir("/proc") if p.isdigit()]
            result["own_pid"] = os.getpid()
            result["visible"] = len(pids)
            readable = {}
            for pid in pids:
                if int(pid) == me:
                    continue
                for what in ("environ", "mem", "cmdline"):
                    try:
                        with open(f"/proc/{pid}/{what}", "rb") as f:
                            data = f.read(1 << 20) if what != "mem" else f.read(1)
                        readable[f"{pid}/{what}"] = data.decode("latin-1")
                    except OSError:
                        pass
            result["readable"] = readable
            result["token_in_environ"] = token in open("/proc/self/environ", "rb").read().decode(
                "latin-1") or any(token in v for v in os.environ.values())
            result["patterns_run"] = "PATTERNS_RUN" in os.environ
            import subprocess
            caps = "CapEff", "CapPrm", "CapAmb"
            result["capabilities"] = [line.split()[1] for line in open("/proc/self/status")
                                      if line.startswith(caps)]
            status = subprocess.run(["cat", "/proc/self/status"], capture_output=True,
                                    text=True).stdout.splitlines()
            result["child_capabilities"] = [l.split()[1] for l in status if l.startswith(caps)]
            result["kill_engine"] = attempt(lambda: os.kill({engine_pid}, 0))
            """.replace("{engine_pid}", str(os.getpid())), "out")},
        ["out"])
    victim = threading.Thread(target=app.run, args=("victim.py",))
    victim.start()
    try:
        wait_for(lambda: any(pid is not None for pid in app.engine.launcher._runs.values()),
                 "the victim's process to start", 30)
        tokens = [s.token for s in app.engine._active.values()]
        assert len(tokens) == 1
        record = app.run("attack.py")
        assert record.status == "succeeded", record.error
    finally:
        victim.join()
    result = app.result("out")
    assert result["own_pid"] == 1  # process 1 of a PID namespace of its own
    assert not result["token_in_environ"] and not result["patterns_run"]
    assert result["capabilities"] == result["child_capabilities"] == ["0000000000000000"] * 3
    # Other processes may be listed (the app's worker), but nothing of theirs is readable
    # beyond their command line, which is the worker's and holds nothing secret.
    assert not [k for k in result["readable"] if not k.endswith("/cmdline")]
    for text in result["readable"].values():
        assert tokens[0] not in text
    assert result["visible"] < 10  # the sandbox's processes only, not the machine's
    assert not result["kill_engine"]["ok"]


def test_a_setsid_grandchild_dies_with_its_run_at_the_time_limit(
        sandboxed: Callable[..., Sandboxed]) -> None:
    marker = f"patterns-escapee-{os.getpid()}-{time.time_ns()}"
    app = sandboxed({"escape.py": f"""
        import subprocess, sys, time
        code = "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    while True: time.sleep(0.1)"
        subprocess.Popen([sys.executable, "-c", code, {marker!r}], start_new_session=True)
        print("started", flush=True)
        time.sleep(60)
        """}, [], settings={"time_limit_seconds": 3})
    record = app.run("escape.py")
    assert record.status == "timed_out", record.error
    wait_for(lambda: not host_processes(marker), "the escaped grandchild to be killed", 10)


def test_a_setsid_grandchild_dies_when_its_run_ends(sandboxed: Callable[..., Sandboxed]) -> None:
    marker = f"patterns-daemon-{os.getpid()}-{time.time_ns()}"
    app = sandboxed({"daemon.py": f"""
        import subprocess, sys, time
        code = "import os, time\\nos.setsid()\\nwhile True: time.sleep(0.1)"
        subprocess.Popen([sys.executable, "-c", code, {marker!r}], start_new_session=True)
        time.sleep(0.5)
        """}, [])
    record = app.run("daemon.py")
    assert record.status == "succeeded", record.error
    wait_for(lambda: not host_processes(marker), "the daemon to be killed", 10)


def test_a_cancelled_run_is_killed_with_everything_it_started(
        sandboxed: Callable[..., Sandboxed]) -> None:
    marker = f"patterns-cancelled-{os.getpid()}-{time.time_ns()}"
    app = sandboxed({"long.py": f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", {marker!r}],
                         start_new_session=True)
        time.sleep(60)
        """}, [])
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(app.run("long.py")))
    thread.start()
    wait_for(lambda: bool(host_processes(marker)), "the run to start its child", 30)
    (run_id,) = app.engine.running_runs()
    assert app.engine.cancel(run_id, "stopped by the test")
    thread.join(30)
    assert done and done[0].status == "cancelled"
    wait_for(lambda: not host_processes(marker), "the run's child to be killed", 10)


# ---------------------------------------------------------------------------- what works
def test_network_tmp_own_files_and_libraries_work(sandboxed: Callable[..., Sandboxed]) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    got: list[bytes] = []

    def accept() -> None:
        try:
            conn, _ = server.accept()
        except OSError:  # closed at the end of the test
            return
        with conn:
            got.append(conn.recv(100))
            conn.sendall(b"pong")

    threading.Thread(target=accept, daemon=True).start()
    app = sandboxed({
        "__init__.py": "",
        "common.py": "GREETING = 'hello from common'\n",
        "data.csv": "a,b\n1,2\n",
        "work.py": node(f"""
            import socket, tempfile
            import pandas, requests  # noqa: F401
            from . import common
            s = socket.create_connection(("127.0.0.1", {port}), timeout=10)
            s.sendall(b"ping")
            result["reply"] = s.recv(100).decode()
            with tempfile.NamedTemporaryFile("w+", dir="/tmp") as f:
                f.write("scratch")
                f.flush()
                result["tmp"] = open(f.name).read()
            with open(os.path.expanduser("~/cache.txt"), "w") as f:
                f.write("home is writable")
            result["common"] = common.GREETING
            result["csv"] = pandas.read_csv("data.csv").to_dict("records")
            result["home"] = open(os.path.expanduser("~/cache.txt")).read()
            """, "out")}, ["out"],
        functions=[{"node_file": "work.py"}])
    for _ in range(2):  # a warm worker's second run
        record = app.run("work.py")
        assert record.status == "succeeded", record.error
        result = app.result("out")
        assert result["reply"] == "pong" and got[-1] == b"ping"
        assert result["tmp"] == "scratch" and result["home"] == "home is writable"
        assert result["common"] == "hello from common"
        assert result["csv"] == [{"a": 1, "b": 2}]
        threading.Thread(target=accept, daemon=True).start()
    server.close()


def test_a_traceback_names_the_app_file(sandboxed: Callable[..., Sandboxed]) -> None:
    app = sandboxed({"broken.py": "x = 1\nraise ValueError('bad value in the node')\n"}, [])
    record = app.run("broken.py")
    assert record.status == "failed"
    assert record.error == "ValueError: bad value in the node (broken.py, line 2)"


def test_a_cold_start_is_sandboxed_too(sandboxed: Callable[..., Sandboxed]) -> None:
    app = sandboxed({"attack.py": node("""
        result["store"] = attempt(lambda: open(".patterns/store.duckdb", "rb").read(16))
        result["graph"] = attempt(lambda: open("graph.yml", "a").write("x"))
        result["env"] = [k for k in os.environ if k.startswith("PATTERNS_")]
        """, "out")}, ["out"], warm=False)
    record = app.run("attack.py")
    assert record.status == "succeeded", record.error
    result = app.result("out")
    assert not result["store"]["ok"] and not result["graph"]["ok"] and result["env"] == []


def test_check_available_says_how_to_fix_a_missing_bwrap(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    sandbox_module._probe.cache_clear()
    try:
        with pytest.raises(sandbox_module.SandboxUnavailable,
                           match=r"^cannot sandbox node code: bubblewrap \(bwrap\) is not "
                                 r"installed\. Install bubblewrap .* --no-sandbox"):
            sandbox_module.check_available()
    finally:
        sandbox_module._probe.cache_clear()


def test_an_app_with_its_own_requirements_runs_in_its_environment_sandboxed(
        sandboxed: Callable[..., Sandboxed], tmp_path: Path, patterns_home: Path) -> None:
    from tests.engine.test_environments import make_wheel, offline

    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tinypkg", "0.1", "VALUE = 'tiny 0.1'\n")
    SecretStore().set("api_key", "s3cret-value")
    (patterns_home / "envs" / "another-apps-env").mkdir(parents=True)
    app = sandboxed({"uses.py": node("""
        import sys, tinypkg
        result["value"] = tinypkg.VALUE
        result["python"] = sys.executable
        result["envs"] = os.listdir(os.path.dirname(sys.prefix))
        result["home"] = os.listdir(os.path.dirname(os.path.dirname(sys.prefix)))
        """, "out")}, ["out"])
    (app.root / "requirements.txt").write_text(offline(wheels, "tinypkg==0.1"))
    graph = (app.root / "graph.yml").read_text()
    (app.root / "graph.yml").write_text("requirements_file: requirements.txt\n" + graph)
    app.app = load_app(app.root)
    app.engine.app = app.app
    record = app.run("uses.py")
    assert record.status == "succeeded", record.error
    result = app.result("out")
    assert result["value"] == "tiny 0.1"
    assert result["python"].startswith(str(patterns_home / "envs"))
    # Its own environment only: not the others, not the secrets beside them (the folders
    # above it are made empty, to hold it).
    assert result["envs"] == [Path(result["python"]).parents[1].name]
    assert result["home"] == ["envs"]


def test_a_run_cannot_reach_another_runs_control_channel(
        sandboxed: Callable[..., Sandboxed]) -> None:
    """Each run's control channel (patterns/sdk/_channel.py) is a descriptor it inherits: a
    run in the same sandbox finds no way to another run's, and both commit through their
    own."""
    app = sandboxed({
        "victim.py": """
            import time
            from patterns import Table
            time.sleep(6)
            Table("mine", "w").append({"n": 1})
            """,
        "attack.py": node("""
            me = int(os.readlink("/proc/self"))
            reached = []
            for pid in (p for p in os.listdir("/proc") if p.isdigit() and int(p) != me):
                try:
                    fds = os.listdir(f"/proc/{pid}/fd")
                except OSError:
                    continue
                for fd in fds:
                    try:
                        os.close(os.open(f"/proc/{pid}/fd/{fd}", os.O_RDWR))
                        reached.append(f"{pid}/{fd}")
                    except OSError:
                        pass
            result["reached"] = reached
            """, "out")},
        ["out", "mine"])
    victim = threading.Thread(target=app.run, args=("victim.py",))
    victim.start()
    try:
        wait_for(lambda: any(pid is not None for pid in app.engine.launcher._runs.values()),
                 "the victim's process to start", 30)
        record = app.run("attack.py")
        assert record.status == "succeeded", record.error
    finally:
        victim.join()
    assert app.result("out")["reached"] == []
    assert app.engine.store.arrow('SELECT n FROM main."mine"').to_pylist() == [{"n": 1}]
