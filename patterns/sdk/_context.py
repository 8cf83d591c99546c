"""The one narrow interface between node code and the engine, and how the SDK finds it.

Inside a run, the node process's bootstrap sets :data:`current_run` to a :class:`NodeRun`
talking to the engine over the data plane. Outside a run (a notebook, a REPL), the SDK asks an
offline factory for a read-only view of the app's store: one registered with
:func:`register_offline`, else the one the ``patterns.offline`` entry point names (the engine
package declares it), so the SDK itself never imports an engine or a store.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

    from patterns.sdk._runtime import NodeRun


@dataclass(frozen=True)
class PortInfo:
    """A table as a run sees it."""

    port: str
    store: str
    mode: str  # "r" | "w"
    #: Bound to one of the app's stores (False: writes to it are no-ops, with a warning).
    connected: bool = True


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    node_id: str
    node_file: str
    ports: Mapping[str, PortInfo]
    parameters: Mapping[str, Any]
    state: Mapping[str, Any]
    positions: Mapping[str, Mapping[str, Any]]
    time_limit_seconds: float
    started_at: float  # time.time() when the run started
    checkpoint_seconds: float = 30.0  # automatic checkpoints while a stream is consumed
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TableInfo:
    exists: bool
    version: int
    record_count: int
    schema: Mapping[str, Any] | None
    sql_name: str
    last_id: str | None


class EngineClient(Protocol):
    """What the SDK needs from an engine. Implemented over Arrow Flight and offline."""

    def run_info(self) -> RunInfo: ...

    def table_info(self, port: str) -> TableInfo: ...

    def write(self, port: str, op: str, data: pa.Table | None, *,
              unique_on: list[str] | None = None,
              options: Mapping[str, Any] | None = None) -> None: ...

    def read(self, port: str, *, version: int | None = None) -> Iterator[pa.RecordBatch]: ...

    def read_sql(self, sql: str, params: list[Any] | None = None) -> Iterator[pa.RecordBatch]: ...

    def execute_sql(self, port: str, sql: str) -> None:
        """Stage SQL that changes ``port``'s table (checked by the engine at once)."""
        ...

    def stream(self, port: str, position: Mapping[str, Any] | None, order_by: str | None,
               starting_value: Any
               ) -> tuple[dict[str, Any], Iterator[pa.RecordBatch] | list[pa.RecordBatch]]:
        """A pass's position and its batches (a list when all of them are in hand)."""
        ...

    def checkpoint(self, state: Mapping[str, Any] | None,
                   positions: Mapping[str, Mapping[str, Any]], *, final: bool,
                   data: tuple[str, pa.Table | None] | None = None) -> None:
        """Commit: ``data``, the last records to append to a port, comes along."""
        ...

    def rollback(self) -> RunInfo:
        """Drop everything staged since the last checkpoint; the run as it was then."""
        ...

    def request_new_run(self, trigger_downstream: bool,
                        wait_atleast_seconds: float | None) -> None: ...

    def respond(self, request_key: str, payload: Any) -> None: ...


current_run: contextvars.ContextVar[NodeRun | None] = contextvars.ContextVar(
    "patterns_current_run", default=None)

_offline: NodeRun | None = None
_offline_factory: Callable[[], NodeRun] | None = None

#: The entry point group naming the offline factory (``patterns.engine.offline``'s).
OFFLINE_ENTRY_POINTS = "patterns.offline"


def register_offline(factory: Callable[[], NodeRun]) -> None:
    """Use ``factory()`` for reads outside a run (instead of the entry point's)."""
    global _offline, _offline_factory
    _offline_factory, _offline = factory, None


def node_run() -> NodeRun:
    """The run node code is part of; outside a run, a read-only view of the app's store."""
    run = current_run.get()
    if run is not None:
        return run
    global _offline
    if _offline is None:
        factory = _offline_factory or _entry_point_factory()
        _offline = factory()
    return _offline


def _entry_point_factory() -> Callable[[], NodeRun]:
    from importlib.metadata import entry_points

    from patterns.errors import ConfigError

    for entry in entry_points(group=OFFLINE_ENTRY_POINTS):
        factory: Callable[[], NodeRun] = entry.load()
        return factory
    raise ConfigError(f"outside a run, tables are read through the engine package, and no "
                      f"'{OFFLINE_ENTRY_POINTS}' entry point names it: reinstall patterns "
                      f"(pip install -e . in a checkout)")
