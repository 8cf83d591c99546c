"""``Table``: a node's handle on a table, read ("r") or written ("w")."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from patterns.collector import held
from patterns.errors import NodeError
from patterns.sdk._context import TableInfo, node_run
from patterns.sdk._runtime import CONVERT_ROWS, NodeRun, Pending

if TYPE_CHECKING:
    import pyarrow as pa

    from patterns.sdk._json_columns import JoinedJson
    from patterns.sdk.schema import Schema, TableVersion
    from patterns.sdk.stream import Stream

_FORMATS = ("records", "dataframe", "arrow", "polars")
_CONTRACTS = ("refuse", "variant", "discard_value", "discard_row")


class Table:
    """A table of the app's store, as one port of this node.

    ``Table("messages")`` reads; ``Table("enriched", "w")`` writes (and may read its own
    table). The name is the port name: graph.yml may bind it to a store of another name.
    """

    def __init__(self, name: str, mode: str = "r", description: str | None = None,
                 schema: str | dict[str, str] | None = None, required: bool = True) -> None:
        if mode not in ("r", "w"):
            raise NodeError(f"Table({name!r}, {mode!r}): mode must be \"r\" (read) or \"w\" (write)")
        self.name = name
        self.mode = mode
        self.description = description
        self.required = required
        self._run: NodeRun = node_run()
        self._port = self._run.port(name, mode)
        self._writable = mode == "w" and not self._run.offline
        #: The port's records not yet converted, where this table appends to one.
        self._pending: Pending | None = self._run.pending(name) \
            if self._writable and self._port.connected else None
        if schema is not None and mode == "w":
            self.init(schema=schema)

    # ------------------------------------------------------------------ metadata
    def _info(self) -> TableInfo:
        self._run.flush(self.name)
        return self._run.client.table_info(self.name)

    @property
    def sql_name(self) -> str:
        """The quoted SQL name of the table's current version (also ``str(table)``)."""
        return self._info().sql_name

    def __str__(self) -> str:
        return self.sql_name

    def __repr__(self) -> str:
        return f"Table({self.name!r}, {self.mode!r})"

    @property
    def exists(self) -> bool:
        return self._info().exists

    @property
    def record_count(self) -> int:
        return self._info().record_count

    @property
    def schema(self) -> Schema | None:
        """The table's schema: a dict (``version``, ``columns``, ``unique_on``) that is also
        the original's ``Schema`` (``name``, ``fields``, ``field_names()``)."""
        from patterns.sdk.schema import Schema

        schema = self._info().schema
        return Schema(schema) if schema is not None else None

    @property
    def is_connected(self) -> bool:
        """Whether the port is bound to one of the app's stores (graph.yml). Writes to a port
        bound to none do nothing (with one warning); reads find no table."""
        return self._port.connected

    # ------------------------------------------------------------------ versions
    def get_active_version(self) -> TableVersion | None:
        """The table's current version (None while it does not exist)."""
        from patterns.sdk.schema import Schema, TableVersion

        info = self._info()
        if not info.exists:
            return None
        return TableVersion(self.name, info.version, info.sql_name, info.record_count, True,
                            Schema(info.schema) if info.schema is not None else None)

    def has_active_version(self) -> bool:
        return self.get_active_version() is not None

    def create_new_version(self, schema: str | dict[str, str] | None = None) -> None:
        """Start a new, empty version (as :meth:`reset`), with ``schema`` if given."""
        self.reset()
        if schema is not None:
            self.init(schema=schema)

    def set_active_version(self, version: TableVersion | None) -> None:
        """Kept for the original API: a new version is active as soon as it is made, so
        this only checks that ``version`` is the current one."""
        current = self.get_active_version()
        if version is not None and (current is None or current.version != version.version):
            raise NodeError(f"table {self.name!r}: version {version.version} is not the "
                            f"current one; older versions cannot be made active again (make "
                            f"a new one with reset() or replace())")

    # ------------------------------------------------------------------ reads
    def read(self, as_format: str = "records", chunksize: int | None = None,
             with_metadata: bool = False) -> Any:
        """All rows in ``patterns_id`` order: records (dicts), a DataFrame or, with
        ``chunksize``, an iterator of chunks of that many rows. The metadata fields
        (``patterns_id``, the ``add_created`` field) are always included, so
        ``with_metadata`` (the original's) changes nothing."""
        self._run.flush(self.name)
        return _shape(self._run.client.read(self.name), as_format, chunksize)

    def read_dataframe(self, chunksize: int | None = None) -> Any:
        return self.read(as_format="dataframe", chunksize=chunksize)

    def read_sql(self, sql: str, as_format: str = "records", chunksize: int | None = None,
                 params: list[Any] | None = None) -> Any:
        """Rows of a read-only query; reference tables by ``{table}`` (their ``str()``) or,
        as in the original, by ``{{ t }}``: a Table variable of the calling code, or the
        port name of one of this node's tables."""
        if "{{" in sql:
            import inspect

            frame = inspect.currentframe()
            caller = frame.f_back if frame is not None else None
            scope = {**caller.f_globals, **caller.f_locals} if caller is not None else {}
            del frame, caller
            sql = _render(sql, scope, self)
        self._run.flush()
        return _shape(self._run.client.read_sql(sql, params), as_format, chunksize)

    def as_stream(self, order_by: str | None = None, starting_value: Any = None) -> Stream:
        from patterns.sdk.stream import Stream

        return Stream(self, order_by=order_by, starting_value=starting_value)

    # ------------------------------------------------------------------ writes
    def append(self, records: Any) -> None:
        """Append a record (dict), a list of records, a DataFrame or an Arrow table."""
        pending = self._pending
        if pending is not None and type(records) is dict:
            # A record at a time, the loop a load spends its time in: the user's line
            # noted only when it changes (the code and instruction of the call), the
            # records converted every CONVERT_ROWS.
            frame = sys._getframe(1)
            if frame.f_code is not pending.code or frame.f_lasti != pending.lasti:
                self._run.note_site(self.name, frame)
            buf = pending.records
            buf.append(records)
            if len(buf) >= CONVERT_ROWS:
                self._run.convert(self.name)
            return
        run = self._run
        if not self._port.connected:
            return self._unconnected()
        run.require_writable(self.name)
        if isinstance(records, list):
            if records:
                run.append(self.name, records)
        elif isinstance(records, dict):
            run.append(self.name, [dict(records)])
        else:
            run.write_frame(self.name, "append", records)

    def upsert(self, records: Any, unique_on: str | list[str] | None = None) -> None:
        """Insert records, replacing the rows that share their ``unique_on`` fields.

        A changed row gets a new ``patterns_id`` and reaches streams again."""
        self._write("upsert", records, unique_on)

    def replace(self, records: Any) -> None:
        """Make a new version of the table holding only ``records``."""
        self._write("replace", [] if records is None else records, None)

    def write(self, records: Any, replace: bool = False) -> None:
        """The older name of :meth:`append` (``replace=True``: :meth:`replace`)."""
        if replace:
            self.replace(records)
        else:
            self.append(records)

    def truncate(self) -> None:
        """Delete every row, keeping the table version and its schema."""
        self._run.require_writable(self.name)
        if not self._port.connected:
            return self._unconnected()
        self._run.command(self.name, "truncate")

    def reset(self) -> None:
        """Start a new, empty version of the table; streams on it start over. The table
        does not exist (``exists`` is False) until the next write."""
        self._run.require_writable(self.name)
        if not self._port.connected:
            return self._unconnected()
        self._run.command(self.name, "reset")

    def flush(self) -> None:
        """Ship buffered records to the engine now (they still commit at the checkpoint)."""
        self._run.flush(self.name)

    def execute_sql(self, sql: str) -> None:
        """Run SQL that changes this table (INSERT, UPDATE, DELETE, TRUNCATE, CREATE TABLE
        ... AS, ALTER TABLE ... ADD COLUMN; several separated by ``;``), written in the
        app's SQL dialect, naming tables by ``{table}``. It commits with the run's next
        checkpoint, like ``append``; the run reads its effect at once."""
        run = self._run
        run.require_writable(self.name)
        if not self._port.connected:
            return self._unconnected()
        run.flush()  # the SQL may read what was appended to any table
        run.client.execute_sql(self.name, sql)

    def init(self, schema: str | dict[str, str] | None = None,
             schema_hints: dict[str, str] | None = None,
             unique_on: str | list[str] | None = None, add_created: str | None = None,
             add_monotonic_id: str | None = "patterns_id", auto_indexes: bool = True,
             contract: str | None = None) -> None:
        """Properties used when the table is created (and unique_on for upserts).

        ``contract`` says what happens to a value that does not fit its column: "refuse"
        (the default: the append fails, naming the record), "variant" (kept as text in a
        side column ``<field>__text``), "discard_value" (stored as null) or "discard_row"."""
        self._run.require_writable(self.name)
        if contract not in (None, *_CONTRACTS):
            raise NodeError(f"table {self.name!r}: contract={contract!r} is not a contract; "
                            f"use one of {list(_CONTRACTS)}")
        if not self._port.connected:
            return None  # (nothing is written: nothing to set up)
        # (a named schema, graph.yml ``schemas:``, is resolved by the engine)
        self._run.set_options(self.name, {
            "schema": schema, "schema_hints": schema_hints,
            "unique_on": _as_list(unique_on), "add_created": add_created,
            "add_monotonic_id": add_monotonic_id, "auto_indexes": auto_indexes,
            "contract": contract,
        })

    def _write(self, op: str, records: Any, unique_on: str | list[str] | None) -> None:
        run = self._run
        run.require_writable(self.name)
        if not self._port.connected:
            return self._unconnected()
        keys = _as_list(unique_on)
        if isinstance(records, dict):
            records = [records]
        if isinstance(records, list):
            run.write_records(self.name, op, records, unique_on=keys)
        else:
            run.write_frame(self.name, op, records, unique_on=keys)


    def _unconnected(self) -> None:
        """A write to a port bound to no store: nothing happens; the first says so."""
        warned = self._run.unconnected_warned
        if self.name not in warned:
            warned.add(self.name)
            import logging

            logging.getLogger("patterns").warning(
                "table %r is not connected to a store in graph.yml: writes to it are "
                "ignored (bind it under the node's `outputs:` or add it to `stores:`)",
                self.name)


def _render(sql: str, scope: dict[str, Any], table: Table) -> str:
    """``{{ name }}`` replaced by the SQL name of the table ``name`` stands for."""
    import re

    ports = table._run.info.ports

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        value = scope.get(name)
        if isinstance(value, Table):
            return value.sql_name
        if name in ports:
            return Table(name, ports[name].mode).sql_name
        raise NodeError(f"read_sql: {{{{ {name} }}}} names no table: use a Table variable "
                        f"of the node or the name of one of its tables "
                        f"({', '.join(sorted(ports)) or 'none'})")

    return re.sub(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}", one, sql)


def _as_list(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _shape(batches: Iterator[pa.RecordBatch], as_format: str, chunksize: int | None) -> Any:
    if as_format not in _FORMATS:
        raise NodeError(f"as_format={as_format!r} is not a format; use one of {list(_FORMATS)}")
    if chunksize is None:
        return _convert(list(batches), as_format)
    if chunksize < 1:
        raise NodeError(f"chunksize must be a positive number of rows, not {chunksize}")
    return _chunks(batches, as_format, chunksize)


def _chunks(batches: Iterator[pa.RecordBatch], as_format: str, size: int) -> Iterator[Any]:
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        while batch.num_rows:
            take = min(size - rows, batch.num_rows)
            pending.append(batch.slice(0, take))
            batch = batch.slice(take)
            rows += take
            if rows == size:
                yield _convert(pending, as_format)
                pending, rows = [], 0
    if rows:
        yield _convert(pending, as_format)


def _convert(batches: list[pa.RecordBatch], as_format: str) -> Any:
    import pyarrow as pa

    schema = batches[0].schema if batches else pa.schema([])
    table = pa.Table.from_batches(batches, schema=schema) if batches else pa.table({})
    json_cols = json_columns(schema)
    if as_format == "arrow":
        return table
    if as_format == "polars":
        try:
            import polars
        except ImportError as exc:
            raise NodeError("as_format='polars' needs polars: add it to the app's "
                            "requirements file (pip install polars)") from exc
        return polars.from_arrow(table)
    if as_format == "dataframe":
        frame = table.to_pandas()
        for col in json_cols:
            frame[col] = frame[col].map(lambda v: None if v is None else json.loads(v))
        return frame
    return arrow_records(table, json_cols)


def json_columns(schema: pa.Schema) -> list[str]:
    meta = schema.metadata or {}
    raw = meta.get(b"patterns.json_columns")
    return [c for c in raw.decode().split(",") if c] if raw else []


def arrow_records(data: pa.Table | pa.RecordBatch, json_cols: list[str],
                  ready: Mapping[str, JoinedJson] | None = None) -> list[dict[str, Any]]:
    """Rows as dicts (see :mod:`patterns.sdk._rows`), with the values of JSON columns
    parsed (dicts and lists again; see :mod:`patterns.sdk._json_columns`). ``ready``: JSON
    columns already joined, by name (by a read-ahead thread).

    The garbage collector is held off while they are made: a batch's tens of thousands of
    new dicts would otherwise set it off every 700 of them, to rescan them all again (half
    the time of reading a million rows); it runs as usual afterwards."""
    from patterns.sdk._json_columns import parse_column, parsed
    from patterns.sdk._rows import rows

    with held():
        return rows(data, {col: parsed(ready[col]) if ready and col in ready
                           else parse_column(data.column(col)) for col in json_cols})


def records_of(records: list[dict[str, Any]], json_cols: list[str]) -> list[dict[str, Any]]:
    for col in json_cols:
        loads = json.loads
        for r in records:
            v = r[col]
            if v is not None:
                r[col] = loads(v)
    return records
