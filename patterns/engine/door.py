"""The one door to a store: through the engine holding it, else the file itself.

DuckDB lets one process write a file, so while an engine (of ``patterns serve`` or of
``patterns run``) holds the store, nobody else can open it. :func:`open_door` finds the
running engine from ``.patterns/engine.json`` and returns an :class:`EngineDoor` that asks it
over its data plane (Arrow streams for rows, Flight actions for the rest); when no engine
runs, a :class:`LocalDoor` opens the file. Both answer through the same functions of
:mod:`patterns.engine.admin`, so what a command prints does not depend on which door it took.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from patterns import wire
from patterns.engine import admin
from patterns.engine.admin import Desk, Scan
from patterns.engine.engine_file import RunningEngine, engine_file, running_engine
from patterns.errors import StoreBusyError

if TYPE_CHECKING:
    import pyarrow as pa

    from patterns.graph.model import App

#: How long a door waits for a store that is locked with no engine file beside it (an engine
#: starting or closing) before saying who holds it.
BUSY_SECONDS = 15.0

#: Admin actions that answer at once (resets that find the node busy say so, not wait).
ACTION_SECONDS = 120.0


class Door(Protocol):
    """What a command asks of a store, wherever it is."""

    #: Who answers: "the store file" or the running engine's name.
    via: str

    def call(self, action: str, /, **args: Any) -> Any:
        """Run the admin function ``action`` (see :data:`patterns.engine.admin.ACTIONS`)."""
        ...

    def rows(self, table: str, version: int | None = None, limit: int | None = None,
             offset: int | None = None) -> tuple[Scan, pa.Schema, Iterator[pa.RecordBatch]]:
        """Rows of ``version`` of ``table`` in commit order, one Arrow batch at a time."""
        ...

    def query(self, sql: str, params: list[Any] | None, dialect: str) -> pa.Table:
        """A read-only query over the app's tables (a notebook's ``read_sql``)."""
        ...

    def close(self) -> None: ...


class LocalDoor:
    """The store file itself, opened by this process (no engine runs)."""

    via = "the store file"

    def __init__(self, store_path: Path | str, app: App | None, *, write: bool) -> None:
        from patterns.store import open_store

        self.store = open_store(store_path, read_only=not write)
        self.desk = Desk(self.store, app, engineless=True)

    def call(self, action: str, /, **args: Any) -> Any:
        return admin.ACTIONS[action](self.desk, **args)

    def rows(self, table: str, version: int | None = None, limit: int | None = None,
             offset: int | None = None) -> tuple[Scan, pa.Schema, Iterator[pa.RecordBatch]]:
        scan = admin.scan(self.desk, table, version, limit, offset)
        return (scan, *admin.read_batches(self.store, scan))

    def query(self, sql: str, params: list[Any] | None, dialect: str) -> pa.Table:
        return admin.query(self.desk, sql, params, dialect)

    def close(self) -> None:
        self.store.close()


class EngineDoor:
    """A running engine, asked over its data plane with its admin token."""

    def __init__(self, engine: RunningEngine) -> None:
        import pyarrow.flight as flight

        self.engine = engine
        self.via = engine.what
        self._client = flight.connect(engine.uri)

    def call(self, action: str, /, **args: Any) -> Any:
        import pyarrow.flight as flight

        body = wire.encode({"token": self.engine.token, "name": action, "args": args})
        options = flight.FlightCallOptions(timeout=ACTION_SECONDS)
        try:
            results = list(self._client.do_action(flight.Action("admin", body), options))
        except flight.FlightError as exc:
            raise self._error(exc) from None
        return wire.decode(results[0].body.to_pybytes()) if results else None

    def rows(self, table: str, version: int | None = None, limit: int | None = None,
             offset: int | None = None) -> tuple[Scan, pa.Schema, Iterator[pa.RecordBatch]]:
        reader = self._get({"kind": "admin_rows", "table": table, "version": version,
                            "limit": limit, "offset": offset})
        found = reader.schema
        doc = wire.decode((found.metadata or {})[b"patterns.scan"])
        scan = Scan(list(doc["names"]), list(doc["json_columns"]), int(doc["version"]))
        schema = found.remove_metadata()

        def batches() -> Iterator[pa.RecordBatch]:
            import pyarrow as pa
            import pyarrow.flight as flight

            try:
                for chunk in reader:
                    yield pa.RecordBatch.from_arrays(chunk.data.columns, schema=schema)
            except flight.FlightError as exc:
                raise self._error(exc) from None

        return scan, schema, batches()

    def query(self, sql: str, params: list[Any] | None, dialect: str) -> pa.Table:
        import pyarrow.flight as flight

        reader = self._get({"kind": "admin_query", "sql": sql, "params": params,
                            "dialect": dialect})
        try:
            return reader.read_all()
        except flight.FlightError as exc:
            raise self._error(exc) from None

    def _get(self, cmd: dict[str, Any]) -> Any:
        import pyarrow.flight as flight

        cmd["token"] = self.engine.token
        try:
            return self._client.do_get(flight.Ticket(wire.encode(cmd)))
        except flight.FlightError as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> Exception:
        from patterns import errors

        parsed = wire.parse_error(str(exc))
        if parsed is None:
            return errors.EngineError(f"{self.via} holds the store but did not answer: {exc}")
        kind, message, _ = parsed
        cls = getattr(errors, kind, None)
        if not (isinstance(cls, type) and issubclass(cls, errors.PatternsError)):
            cls = errors.EngineError
        return cls(message)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._client.close()


def open_door(store_path: Path, app: App | None, *, write: bool = False,
              busy_seconds: float = BUSY_SECONDS, store: Path | str | None = None) -> Door:
    """The running engine's door when one announced itself at ``store_path``, else the
    store (``store``: a database URL; else the file ``store_path``) opened here (read-only
    unless ``write``). A store locked by a process with no engine file (an engine starting
    or closing) is waited for up to ``busy_seconds``."""
    deadline = time.monotonic() + busy_seconds
    while True:
        engine = running_engine(store_path)
        if engine is not None:
            return EngineDoor(engine)
        try:
            return LocalDoor(store or store_path, app, write=write)
        except StoreBusyError:
            if time.monotonic() >= deadline:
                raise StoreBusyError(
                    f"the store {store_path} is held by a process that is not a running "
                    f"Patterns engine (no {engine_file(store_path)} names it; a `duckdb` "
                    f"shell?): close that process and try again") from None
            time.sleep(0.1)


def wait_for_engine(store_path: Path, say: Callable[[str], None]) -> None:
    """Return once no engine holds ``store_path``; say once what is waited for."""
    said = False
    while (engine := running_engine(store_path)) is not None:
        if not said:
            say(f"another {engine.what} is running this app; waiting for it...")
            said = True
        time.sleep(0.2)
