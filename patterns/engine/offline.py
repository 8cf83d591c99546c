"""Reading an app's store outside a run (a notebook, a REPL), read-only.

``Table("messages").read_dataframe()`` in a notebook lands here (the SDK finds
:func:`open_offline_run` through the ``patterns.offline`` entry point): the app is the folder
with a graph.yml at or above the working directory (or ``$PATTERNS_APP``), any table name can
be read and nothing can be written. Each read goes through the one door to the store: the
running engine (``patterns serve`` or a ``patterns run``) when one holds it, else the file,
opened read-only for that read only, so an open notebook never keeps an engine from starting.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from patterns.engine.door import Door, open_door
from patterns.errors import ConfigError, NodeError
from patterns.sdk._context import RunInfo, TableInfo
from patterns.sdk._runtime import NodeRun
from patterns.store.reads import BATCH_ROWS


def find_app_root(start: Path | None = None) -> Path:
    configured = os.environ.get("PATTERNS_APP")
    if configured:
        return Path(configured).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "graph.yml").exists():
            return folder
    raise ConfigError(f"no graph.yml in {here} or above it: open the notebook inside an app "
                      f"folder or set PATTERNS_APP=/path/to/app")


class OfflineClient:
    def __init__(self, store_path: Path, dialect: str = "postgres",
                 store_url: str | None = None) -> None:
        self.store_path = store_path  # (where an engine announces itself)
        self.store_url = store_url  # a database server's store, when it is one
        self.dialect = dialect  # the app's settings.sql_dialect, for read_sql

    @contextmanager
    def _door(self) -> Iterator[Door | None]:
        """The door to the store for one read; None while there is no store yet."""
        if self.store_url is None and not self.store_path.exists():
            yield None
            return
        opened = open_door(self.store_path, None, store=self.store_url)
        try:
            yield opened
        finally:
            opened.close()

    def run_info(self) -> RunInfo:
        return RunInfo(run_id="offline", node_id="offline", node_file="(notebook)", ports={},
                       parameters={}, state={}, positions={}, time_limit_seconds=float("inf"),
                       started_at=time.time())

    def table_info(self, port: str) -> TableInfo:
        with self._door() as door:
            if door is None:
                return TableInfo(False, 0, 0, None, f'main."{port}"', None)
            return TableInfo(**door.call("table_info", name=port))

    def read(self, port: str, *, version: int | None = None) -> Iterator[pa.RecordBatch]:
        with self._door() as door:
            if door is None or not door.call("table_info", name=port)["exists"]:
                return iter(())
            scan, schema, batches = door.rows(port, version)
            table = pa.Table.from_batches(list(batches), schema)
        table = table.replace_schema_metadata(
            {b"patterns.json_columns": ",".join(scan.json_columns).encode()})
        return iter(table.to_batches(BATCH_ROWS))

    def read_sql(self, sql: str, params: list[Any] | None = None) -> Iterator[pa.RecordBatch]:
        with self._door() as door:
            if door is None:
                raise NodeError(f"no store yet at {self.store_path}: run the app first")
            table = door.query(sql, params, self.dialect)
        return iter(table.to_batches(BATCH_ROWS))

    def execute_sql(self, port: str, sql: str) -> None:
        raise NodeError("outside a run the store is read-only")

    def stream(self, port: str, position: Mapping[str, Any] | None, order_by: str | None,
               starting_value: Any) -> tuple[dict[str, Any], Iterator[pa.RecordBatch]]:
        raise NodeError("streams keep a position per node, so they need a run: read the table "
                        "with table.read() here, or run the node with `patterns run`")

    def write(self, port: str, op: str, data: pa.Table | None, *,
              unique_on: list[str] | None = None,
              options: Mapping[str, Any] | None = None) -> None:
        raise NodeError("outside a run the store is read-only")

    def checkpoint(self, state: Mapping[str, Any] | None,
                   positions: Mapping[str, Mapping[str, Any]], *, final: bool,
                   data: tuple[str, pa.Table | None] | None = None) -> None:
        pass

    def rollback(self) -> RunInfo:
        return self.run_info()

    def request_new_run(self, trigger_downstream: bool,
                        wait_atleast_seconds: float | None) -> None:
        raise NodeError("request_new_run needs a run")

    def respond(self, request_key: str, payload: Any) -> None:
        raise NodeError("respond_to_request needs a run")


def open_offline_run() -> NodeRun:
    root = find_app_root()
    configured = os.environ.get("PATTERNS_STORE")
    url = configured if configured and "://" in configured \
        and not configured.startswith("duckdb://") else None
    path = Path(configured.removeprefix("duckdb://")) if configured and url is None else \
        root / ".patterns" / "store.duckdb"
    return NodeRun(OfflineClient(path, _dialect(root), url), offline=True)


def _dialect(root: Path) -> str:
    """The app's ``settings.sql_dialect`` (postgres when graph.yml does not load)."""
    from patterns.errors import PatternsError
    from patterns.graph.loader import load_app

    try:
        return load_app(root).settings.sql_dialect
    except PatternsError:
        return "postgres"

