"""Reading an app's store outside a run (a notebook, a REPL), read-only.

``Table("messages").read_dataframe()`` in a notebook lands here: the app is the folder with a
graph.yml at or above the working directory (or ``$PATTERNS_APP``), its store is opened
read-only, any table name can be read and nothing can be written. DuckDB lets one process
write a file or many read it, so this works while no ``patterns run`` holds the store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from patterns.errors import ConfigError, NodeError
from patterns.sdk._context import RunInfo, TableInfo
from patterns.sdk._runtime import NodeRun
from patterns.store.duckdb import DuckDBStore
from patterns.store.reads import BATCH_ROWS, scan_sql


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
    def __init__(self, store_path: Path, dialect: str = "postgres") -> None:
        self.store_path = store_path
        self.dialect = dialect  # the app's settings.sql_dialect, for read_sql
        self._store: DuckDBStore | None = None

    def _open(self) -> DuckDBStore | None:
        if self._store is None and self.store_path.exists():
            self._store = DuckDBStore(self.store_path, read_only=True)
        return self._store

    def run_info(self) -> RunInfo:
        return RunInfo(run_id="offline", node_id="offline", node_file="(notebook)", ports={},
                       parameters={}, state={}, positions={}, time_limit_seconds=float("inf"),
                       started_at=time.time())

    def table_info(self, port: str) -> TableInfo:
        store = self._open()
        meta = store.table(port) if store else None
        if store is None or meta is None:
            return TableInfo(False, 0, 0, None, f'main."{port}"', None)
        return TableInfo(True, meta.version, store.count(meta), meta.schema_doc(),
                         store.view_name(port), meta.last_id)

    def read(self, port: str, *, version: int | None = None) -> Iterator[pa.RecordBatch]:
        store = self._open()
        meta = store.table(port) if store else None
        if store is None or meta is None:
            return iter(())
        table = store.arrow(scan_sql(meta))
        table = table.replace_schema_metadata(
            {b"patterns.json_columns": ",".join(meta.json_columns()).encode()})
        return iter(table.to_batches(BATCH_ROWS))

    def read_sql(self, sql: str, params: list[Any] | None = None) -> Iterator[pa.RecordBatch]:
        from patterns.engine.sql_nodes import offline_query

        store = self._open()
        if store is None:
            raise NodeError(f"no store yet at {self.store_path}: run the app first")
        tables = [m.name for m in store.tables()]
        query, integer_division = offline_query(sql, self.dialect, tables)
        with store.cursor() as cur:
            if integer_division:
                cur.execute("SET integer_division = true")
            table = store.arrow(query, params, cur)
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
    path = Path(configured) if configured else root / ".patterns" / "store.duckdb"
    return NodeRun(OfflineClient(path, _dialect(root)), offline=True)


def _dialect(root: Path) -> str:
    """The app's ``settings.sql_dialect`` (postgres when graph.yml does not load)."""
    from patterns.errors import PatternsError
    from patterns.graph.loader import load_app

    try:
        return load_app(root).settings.sql_dialect
    except PatternsError:
        return "postgres"

