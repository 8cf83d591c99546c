"""Shared fixtures: real apps on disk, a real engine (DuckDB file, Flight data plane), and
node code driven either as real subprocesses or in-process through the real data plane."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from patterns.engine.engine import Engine
from patterns.engine.reactive import PassResult, ReactivePass
from patterns.engine.session import RunSession
from patterns.graph.loader import load_app
from patterns.graph.model import App
from patterns.sdk._context import current_run
from patterns.sdk._flight import FlightEngineClient
from patterns.sdk._runtime import NodeRun


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """What ``check`` returns once it is truthy, polled until ``timeout`` seconds pass
    (then the test fails, naming ``what``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(autouse=True)
def patterns_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("patterns-home")
    monkeypatch.setenv("PATTERNS_HOME", str(home))
    monkeypatch.delenv("PATTERNS_STORE", raising=False)
    return home


def write_app(root: Path, nodes: dict[str, str], stores: list[str],
              functions: list[dict[str, Any]] | None = None,
              settings: dict[str, Any] | None = None) -> Path:
    """An app folder: node files (name → source) registered in graph.yml in order."""
    root.mkdir(parents=True, exist_ok=True)
    for name, source in nodes.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(source))
    if functions is None:
        functions = [{"node_file": name, "id": Path(name).stem.replace("_", "")[:8].lower()}
                     for name in nodes]
    graph: dict[str, Any] = {"title": "Test app", "functions": functions,
                             "stores": [{"table": s} for s in stores]}
    if settings:
        graph["settings"] = settings
    (root / "graph.yml").write_text(yaml.safe_dump(graph, sort_keys=False))
    return root


class AppRunner:
    """A loaded app with an engine over its store; closes the engine when the test ends."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.app: App = load_app(root)
        self.engine = Engine(self.app)

    def reload(self) -> None:
        self.app = load_app(self.root)
        self.engine.app = self.app

    def run(self, node: str | None = None) -> PassResult:
        self.reload()
        only = self.app.node(node) if node else None
        return ReactivePass(self.engine).run(only=only)

    def run_node(self, node: str, trigger: str = "manual") -> Any:
        self.reload()
        record, _ = self.engine.run_node(self.app.node(node), trigger)
        return record

    def rows(self, table: str, order: str = "patterns_id") -> list[dict[str, Any]]:
        meta = self.engine.store.table(table)
        if meta is None:
            return []
        return self.engine.store.arrow(f'SELECT * FROM main."{table}" ORDER BY "{order}"').to_pylist()

    def log(self, run_id: str) -> str:
        """A run's stored output ("" when none was saved)."""
        with self.engine.store.read() as view:
            return view.logs.get(run_id) or ""

    def state(self, node_id: str) -> dict[str, Any]:
        with self.engine.store.read() as view:
            return view.memory.state(node_id)

    def stored_run(self, run_id: str) -> Any:
        with self.engine.store.read() as view:
            return view.runs.get(run_id)

    @contextmanager
    def sdk(self, node: str) -> Iterator[NodeRun]:
        """Node code in this process, talking to the engine through the real data plane."""
        self.reload()
        n = self.app.node(node)
        session = RunSession(run_id=f"test-{node}", node=n, store=self.engine.store,
                             parameters={}, time_limit_seconds=600)
        self.engine.dataplane.register(session)
        self.session = session  # (the engine's side of the run, for tests to look at)
        client = FlightEngineClient(self.engine.dataplane.uri, session.token)
        run = NodeRun(client)
        token = current_run.set(run)
        try:
            yield run
            run.checkpoint(final=True)
        finally:
            current_run.reset(token)
            self.engine.dataplane.unregister(session)
            client.close()

    def close(self) -> None:
        self.engine.close()


@pytest.fixture
def app_runner(tmp_path: Path) -> Iterator[Callable[..., AppRunner]]:
    runners: list[AppRunner] = []

    def make(nodes: dict[str, str], stores: list[str], **kwargs: Any) -> AppRunner:
        root = write_app(tmp_path / f"app{len(runners)}", nodes, stores, **kwargs)
        runner = AppRunner(root)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.close()


# ---------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server for this test process: ``PATTERNS_TEST_POSTGRES`` when
    given, else a throwaway cluster started here (and stopped at the end)."""
    import os

    given = os.environ.get("PATTERNS_TEST_POSTGRES")
    if given:
        yield given
        return
    from patterns.store import pg_server

    server = pg_server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: str, request: pytest.FixtureRequest) -> str:
    """A new, empty database on the test PostgreSQL server (its URL), one per test."""
    import os
    import re
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    name = re.sub(r"\W+", "_", f"t_{worker}_{request.node.name}").lower()[:60]
    with psycopg.connect(postgres_server, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    parts = urlsplit(postgres_server)
    return urlunsplit(parts._replace(path=f"/{name}"))
