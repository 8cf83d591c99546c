"""Node runs on a real Dask cluster: a scheduler and two worker processes on loopback,
started as `dask scheduler` / `dask worker` subprocesses (no mocks). The acceptance app runs
through `patterns run --executor dask://...` with the results it has locally; a worker killed
mid-run costs nothing but time (the run starts again from its last checkpoint, its rows land
once); cancellation, time limits and live output work across the cluster; a scheduler that
is down or has no workers is one line and an untouched app."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patterns.engine.dask_launcher import DaskLauncher
from patterns.engine.engine import Engine
from patterns.engine.events import SilentReporter
from patterns.graph.loader import load_app
from patterns.store.model import RunRecord
from tests.conftest import wait_for, write_app

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chat_enrich"
DASK = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
DASK_WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]
CLI = [sys.executable, "-m", "patterns.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])




class Cluster:
    """A Dask scheduler and its worker processes (no nanny: a killed worker stays dead)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.address = f"tcp://127.0.0.1:{free_port()}"
        port = self.address.rpartition(":")[2]
        self.scheduler = subprocess.Popen(
            [*DASK, "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.workers: list[subprocess.Popen[bytes]] = []
        wait_for(self._listening, "the Dask scheduler", 60)

    def _listening(self) -> bool:
        host, _, port = self.address[len("tcp://"):].rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            return False
        return True

    def start_worker(self) -> None:
        self.workers.append(subprocess.Popen(
            [*DASK_WORKER, self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
             "--local-directory", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def ensure_workers(self, count: int = 2) -> None:
        from distributed import Client

        self.workers = [w for w in self.workers if w.poll() is None]
        while len(self.workers) < count:
            self.start_worker()
        with Client(self.address, timeout=60, set_as_default=False) as client:
            wait_for(lambda: len(client.scheduler_info(n_workers=-1)["workers"]) == count,
                     f"{count} Dask workers", 90)

    def worker_pids(self) -> set[int]:
        return {w.pid for w in self.workers if w.poll() is None}

    def close(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            proc.terminate()
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        cluster.ensure_workers(2)
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def workers(cluster: Cluster) -> Cluster:
    cluster.ensure_workers(2)  # (a test before may have killed one)
    return cluster


class Lines(SilentReporter):
    """Output lines as the engine gets them, with the time they came."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def run_output(self, run: RunRecord, stream: str, line: str,
                   level: str | None = None) -> None:
        self.lines.append((time.monotonic(), line))

    def seen(self, text: str) -> bool:
        return any(text in line for _, line in self.lines)


def dask_engine(root: Path, address: str, reporter: Lines | None = None,
                data_plane_host: str | None = None) -> Engine:
    return Engine(load_app(root), launcher=DaskLauncher.connect(address), reporter=reporter,
                  data_plane_host=data_plane_host)


def ancestry(pid: int) -> list[int]:
    """``pid`` and its parents, up to init."""
    chain = [pid]
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ---------------------------------------------------------------------- the acceptance app
def test_acceptance_app_runs_on_the_workers_with_its_local_results(workers: Cluster,
                                                                   tmp_path: Path) -> None:
    app = tmp_path / "chat_enrich"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns(".patterns"))
    for args in (["demo_token", "t-1"],
                 ["connection.demo_api", '{"base_url": "https://api.example.invalid"}']):
        assert subprocess.run([*CLI, "create", "secret", *args]).returncode == 0
    first = subprocess.run([*CLI, "run", str(app), "--json", "--executor",
                            workers.address.replace("tcp://", "dask://")],
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    runs = json.loads(first.stdout)["runs"]
    assert {r["status"] for r in runs} == {"succeeded"}
    assert sum(r["node_id"] == "ingest01" for r in runs) == 3  # request_new_run continues

    import duckdb

    con = duckdb.connect(str(app / ".patterns" / "store.duckdb"), read_only=True)
    try:
        count = con.sql("select count(*), count(distinct id) from messages_enriched").fetchall()
        users = con.sql("select sum(messages) from user_stats").fetchall()
        channels = con.sql("select channel, messages, among_latest from channel_daily "
                           "order by patterns_id").fetchall()
    finally:
        con.close()
    assert count == [(60, 60)] and users == [(60,)]
    assert channels == [("general", 20, 3), ("help", 20, 3), ("random", 20, 3)]


def test_node_processes_run_under_the_dask_workers_and_reach_the_engine_over_tcp(
        workers: Cluster, tmp_path: Path) -> None:
    from tests.engine.test_data_plane_host import machine_address

    address = machine_address()  # (not loopback: as from another machine)
    root = write_app(tmp_path / "app", {"where.py": """
        import os
        from patterns import Table
        Table("out", "w").append({"pid": os.getppid()})  # (its warm worker: it lives on)
    """}, ["out"])
    engine = dask_engine(root, workers.address, data_plane_host=f"0.0.0.0={address}")
    try:
        record, _ = engine.run_node(engine.app.node("where"), "manual")
        pid = engine.store.arrow('SELECT pid FROM main."out"').to_pylist()[0]["pid"]
    finally:
        engine.close()
    assert record.status == "succeeded", record.error
    assert engine.dataplane.uri.startswith(f"grpc://{address}:")
    # the node's warm worker was started by a Dask worker process, not by the engine
    assert ancestry(pid)[1] in workers.worker_pids()


# ---------------------------------------------------------------------- a lost worker
WRITER = """
from patterns import Table
Table("src", "w").append([{"n": i} for i in range(300)])
"""

COPIER = """
import os, time
from pathlib import Path
from patterns import Table, Parameter
marks = Path(Parameter("marks", type=str, default="."))
(marks / f"{os.getpid()}.pid").write_text(str(os.getpid()))
src = Table("src")
dst = Table("dst", "w")
stream = src.as_stream()
for i, r in enumerate(stream.consume_records()):
    dst.append({"n": r["n"]})
    if i % 10 == 9:
        stream.checkpoint()
    time.sleep(0.01)
"""


def test_a_killed_worker_costs_a_restart_from_the_last_checkpoint_and_no_row_twice(
        workers: Cluster, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    root = write_app(tmp_path / "app", {"writer.py": WRITER, "copier.py": COPIER},
                     ["src", "dst"])
    lines = Lines()
    engine = dask_engine(root, workers.address, lines)
    try:
        assert engine.run_node(engine.app.node("writer"), "manual")[0].status == "succeeded"
        done: list[RunRecord] = []
        runner = threading.Thread(target=lambda: done.append(engine.run_node(
            engine.app.node("copier"), "manual", {"marks": str(marks)})[0]))
        runner.start()
        node_pid = int(wait_for(lambda: list(marks.glob("*.pid")), "the node to start", 60)[0].stem)
        wait_for(lambda: (engine.store.table("dst") or None) and engine.store.arrow(
            'SELECT count(*) AS n FROM main."dst"').to_pylist()[0]["n"] >= 30,
                 "a few checkpoints", 60)
        (worker,) = workers.worker_pids() & set(ancestry(node_pid))
        os.kill(worker, signal.SIGKILL)
        runner.join(120)
        assert done, "the run did not end"
        record = done[0]
        rows = engine.store.arrow('SELECT n FROM main."dst"').to_pylist()
    finally:
        engine.close()
    assert record.status == "succeeded", record.error
    assert len(list(marks.glob("*.pid"))) == 2  # started again, in a new process
    assert not alive(node_pid)  # the lost process did not outlive its worker
    counts = Counter(r["n"] for r in rows)
    assert set(counts) == set(range(300)) and set(counts.values()) == {1}
    assert lines.seen("the Dask worker running it was lost; the run was rolled back to its "
                      "last checkpoint")


# ---------------------------------------------------------------------- stop, time limit, output
SLEEPER = """
import os, time
from pathlib import Path
from patterns import Parameter
marks = Path(Parameter("marks", type=str, default="."))
print("started", os.getpid(), flush=True)
(marks / f"{os.getpid()}.pid").write_text(str(os.getpid()))
go = marks / "go"
deadline = time.time() + 60
while not go.exists() and time.time() < deadline:
    time.sleep(0.05)
print("went on", go.exists(), flush=True)
time.sleep(float(Parameter("linger", type=float, default=0)))
"""


def sleeper_app(tmp_path: Path, **settings: Any) -> tuple[Path, Path]:
    marks = tmp_path / "marks"
    marks.mkdir()
    return write_app(tmp_path / "app", {"sleeper.py": SLEEPER}, [],
                     settings=settings or None), marks


def test_output_arrives_while_the_node_runs(workers: Cluster, tmp_path: Path) -> None:
    root, marks = sleeper_app(tmp_path)
    lines = Lines()
    engine = dask_engine(root, workers.address, lines)
    try:
        done: list[RunRecord] = []
        runner = threading.Thread(target=lambda: done.append(engine.run_node(
            engine.app.node("sleeper"), "manual", {"marks": str(marks)})[0]))
        runner.start()
        # The node waits for "go", which is only made once its first line has come back.
        wait_for(lambda: lines.seen("started"), "the node's first line, live", 60)
        assert not done
        (marks / "go").touch()
        runner.join(60)
    finally:
        engine.close()
    assert done and done[0].status == "succeeded", done and done[0].error
    assert lines.seen("went on True")


def test_cancel_kills_the_remote_process(workers: Cluster, tmp_path: Path) -> None:
    root, marks = sleeper_app(tmp_path)
    engine = dask_engine(root, workers.address)
    try:
        done: list[RunRecord] = []
        run_id = "01TESTCANCELDASK000000000"
        runner = threading.Thread(target=lambda: done.append(engine.run_node(
            engine.app.node("sleeper"), "manual", {"marks": str(marks)}, run_id=run_id)[0]))
        runner.start()
        pid = int(wait_for(lambda: list(marks.glob("*.pid")), "the node", 60)[0].stem)
        started = time.monotonic()
        assert engine.cancel(run_id, "stopped by the test")
        runner.join(30)
        took = time.monotonic() - started
    finally:
        engine.close()
    assert done and done[0].status == "cancelled" and done[0].error == "stopped by the test"
    assert took < 10
    wait_for(lambda: not alive(pid), "the remote node process to end", 10)


def test_time_limit_is_enforced_on_the_worker(workers: Cluster, tmp_path: Path) -> None:
    root, marks = sleeper_app(tmp_path, time_limit_seconds=2)
    engine = dask_engine(root, workers.address)
    try:
        started = time.monotonic()
        record, _ = engine.run_node(engine.app.node("sleeper"), "manual", {"marks": str(marks)})
        took = time.monotonic() - started
    finally:
        engine.close()
    assert record.status == "timed_out", record.error
    assert "time limit of 2 s" in (record.error or "")
    assert took < 20
    (pid_file,) = marks.glob("*.pid")
    wait_for(lambda: not alive(int(pid_file.stem)), "the remote node process to end", 10)


# ---------------------------------------------------------------------- bad clusters
def test_losing_every_worker_fails_the_run_naming_the_cluster_and_commits_nothing(
        workers: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from patterns.engine import dask_launcher

    monkeypatch.setattr(dask_launcher, "NO_WORKERS_SECONDS", 3.0)
    marks = tmp_path / "marks"
    marks.mkdir()
    root = write_app(tmp_path / "app", {"stuck.py": """
        import os, time
        from pathlib import Path
        from patterns import Table, Parameter
        out = Table("out", "w")
        out.append([{"n": i} for i in range(50)])
        out.flush()  # staged in the engine, never checkpointed
        marks = Path(Parameter("marks", type=str, default="."))
        (marks / f"{os.getpid()}.pid").write_text("")
        time.sleep(60)
    """}, ["out"])
    engine = dask_engine(root, workers.address)
    try:
        done: list[RunRecord] = []
        runner = threading.Thread(target=lambda: done.append(engine.run_node(
            engine.app.node("stuck"), "manual", {"marks": str(marks)})[0]))
        runner.start()
        wait_for(lambda: list(marks.glob("*.pid")), "the node to start", 60)
        for pid in workers.worker_pids():
            os.kill(pid, signal.SIGKILL)
        runner.join(60)
        assert done, "the run did not end"
        out = engine.store.table("out")
    finally:
        engine.close()
    record = done[0]
    assert record.status == "failed"
    assert f"the Dask cluster at {workers.address} has had no workers" in (record.error or "")
    assert f"dask worker {workers.address}" in (record.error or "")
    assert out is None  # nothing committed: the table was never made


def test_a_scheduler_that_is_down_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    root, _ = sleeper_app(tmp_path)
    address = f"127.0.0.1:{free_port()}"
    proc = subprocess.run([*CLI, "run", str(root), "--executor", f"dask://{address}"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATTERNS_DASK_CONNECT_SECONDS": "2"})
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert f"cannot reach the Dask scheduler at tcp://{address}" in err
    assert "dask scheduler" in err and "Traceback" not in err
    assert not (root / ".patterns" / "store.duckdb").exists()


def test_a_scheduler_without_workers_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    root, _ = sleeper_app(tmp_path)
    lonely = Cluster(tmp_path)  # a scheduler, no worker
    try:
        proc = subprocess.run([*CLI, "run", str(root), "--executor",
                               lonely.address.replace("tcp://", "dask://")],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PATTERNS_DASK_CONNECT_SECONDS": "5"})
    finally:
        lonely.close()
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert f"the Dask scheduler at {lonely.address} has no workers" in err
    assert f"dask worker {lonely.address}" in err
    assert not (root / ".patterns" / "store.duckdb").exists()


def test_a_wrong_executor_is_one_line(tmp_path: Path) -> None:
    root, _ = sleeper_app(tmp_path)
    proc = subprocess.run([*CLI, "run", str(root), "--executor", "dask-local:none"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "dask-local:2" in proc.stderr and "Traceback" not in proc.stderr
    assert not (root / ".patterns" / "store.duckdb").exists()


# ---------------------------------------------------------------------- patterns serve
def test_serve_runs_triggered_nodes_on_the_workers(workers: Cluster, tmp_path: Path) -> None:
    from tests.server.conftest import Server

    root = write_app(tmp_path / "app", {"where.py": """
        import os
        from patterns import Table
        print("on the worker", flush=True)
        Table("out", "w").append({"pid": os.getppid()})
    """}, ["out"])
    server = Server([root], "--no-sandbox", "--executor",
                    workers.address.replace("tcp://", "dask://"))
    try:
        (slug,) = [a["slug"] for a in server.get("/apps")]
        assert server.post(f"/apps/{slug}/nodes/where/trigger").status_code == 202
        run = server.wait_for(lambda: next((r for r in server.runs(slug, "where")
                                            if r["status"] != "running"), None), 60, "the run")
        rows = server.rows(slug, "out")
    finally:
        assert server.stop() == 0
    assert run["status"] == "succeeded", run
    assert ancestry(rows[0]["pid"])[1] in workers.worker_pids()


def test_serve_with_dask_asks_to_drop_the_sandbox_knowingly(tmp_path: Path) -> None:
    root, _ = sleeper_app(tmp_path)
    proc = subprocess.run([*CLI, "serve", str(root), "--port", "0", "--executor",
                           "dask://127.0.0.1:1"], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items()
                               if k != "PATTERNS_NO_SANDBOX"})
    assert proc.returncode != 0
    assert "--no-sandbox" in proc.stderr and "Traceback" not in proc.stderr
