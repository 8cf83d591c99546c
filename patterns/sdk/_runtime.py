"""The node side of a run: write buffers, state, stream positions and checkpoints.

Records appended by node code are buffered per table, converted to Arrow every
:data:`CONVERT_ROWS` records (the dicts are then free to go: fewer live objects for the garbage
collector to rescan) and shipped to the engine as Arrow batches: every :data:`FLUSH_ROWS`
records on a thread of their own while node code goes on (:mod:`patterns.sdk._sender`), and
before any checkpoint or read of that table.
State changes and stream positions stay here until a checkpoint sends them, with the
checkpoint, in one message: the engine commits them together with the staged writes.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from patterns.errors import AtOnce, NodeError
from patterns.sdk._context import EngineClient, PortInfo, RunInfo
from patterns.sdk._sender import InOrder, Sender

if TYPE_CHECKING:
    import pyarrow as pa

#: Buffered records are converted to Arrow every CONVERT_ROWS and shipped every FLUSH_ROWS.
CONVERT_ROWS = 10_000
FLUSH_ROWS = 50_000
#: A list of at least two parts of LIST_PART_ROWS records (a row group of the DuckDB store:
#: what it inserts before the checkpoint, docs/store.md) is shipped a part at a time as it
#: is converted (:meth:`NodeRun.append`).
LIST_PART_ROWS = 122_880
_SDK_DIR = os.path.dirname(os.path.abspath(__file__))


#: How long after its last checkpoint a stream's run commits at the end of a pass that
#: more rows follow (see :meth:`NodeRun.pass_checkpoint`).
PASS_CHECKPOINT_SECONDS = 0.25


class Pending:
    """A port's records appended and not yet converted, and the user's call that appended
    the last of them (its code and instruction). One object per port for the whole run, so
    :meth:`Table.append <patterns.sdk.table.Table.append>` keeps it and appends a record
    without a call into the run (a record's append is the loop a load spends its time in)."""

    __slots__ = ("code", "lasti", "records")

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.code: Any = None
        self.lasti = -1

    def forget_site(self) -> None:
        self.code, self.lasti = None, -1


class NodeRun:
    def __init__(self, client: EngineClient, *, offline: bool = False) -> None:
        self._sender = Sender()
        self._direct = client  # (the sender's; everything else goes through self.client)
        #: Every call waits for the batch the sender has in flight (requests stay in order).
        self.client: EngineClient = InOrder(client, self._sender)  # type: ignore[assignment]
        self.offline = offline
        self.info: RunInfo = client.run_info()
        self._pending: dict[str, Pending] = {}
        self._converted: dict[str, list[pa.Table]] = {}  # per port: converted, not shipped
        self._converted_rows: dict[str, int] = {}
        self._sites: dict[str, list[tuple[int, tuple[str, int]]]] = {}
        self._state: dict[str, Any] = copy.deepcopy(dict(self.info.state))
        self._state_dirty = False
        self.positions: dict[str, dict[str, Any]] = {
            k: dict(v) for k, v in self.info.positions.items()}
        self._positions_dirty: set[str] = set()
        self.unconnected_warned: set[str] = set()  # ports whose ignored writes were told
        self.streams: list[Any] = []  # live Stream objects (one per port), folded at checkpoints
        self.options_sent: dict[str, Mapping[str, Any]] = {}
        self._auto_every = self.info.checkpoint_seconds
        self.next_auto_checkpoint = time.monotonic() + self._auto_every
        self.last_checkpoint = time.monotonic()  # (or the run's start)

    # ------------------------------------------------------------------ ports
    def port(self, name: str, mode: str) -> PortInfo:
        info = self.info.ports.get(name)
        if info is None:
            if self.offline:
                return PortInfo(name, name, mode)
            declared = ", ".join(sorted(self.info.ports)) or "none"
            raise NodeError(
                f"node {self.info.node_file} uses table {name!r}, which it did not declare; "
                f"declared tables: {declared}. Tables must be declared with a literal name "
                f"(Table({name!r})) so the graph knows about them"
            )
        if mode == "w" and info.mode != "w":
            raise NodeError(
                f"node {self.info.node_file} writes to table {name!r}, which it declared "
                f"read-only; declare it with Table({name!r}, \"w\")"
            )
        return info

    def require_writable(self, port: str) -> None:
        if self.offline:
            raise NodeError(
                f"writing to table {port!r} needs a run: outside a run the store is read-only. "
                f"Run the node with `patterns run APP --node FILE`"
            )
        self.port(port, "w")

    # ------------------------------------------------------------------ writes
    def pending(self, port: str) -> Pending:
        """``port``'s records not yet converted (the same object for the whole run)."""
        pending = self._pending.get(port)
        if pending is None:
            pending = self._pending[port] = Pending()
        return pending

    def append(self, port: str, records: list[dict[str, Any]]) -> None:
        pending = self.pending(port)
        buf = pending.records
        if not buf and len(records) >= 2 * LIST_PART_ROWS and type(records) is list:
            self._append_in_parts(port, records, sys._getframe(2))
            return
        self.note_site(port, sys._getframe(2))  # append <- Table.append <- user
        if not buf and len(records) >= CONVERT_ROWS and type(records) is list:
            # A long list is converted as the node made it, not copied into a new list
            # first: that copy is young, and the collector's next pass over the young
            # objects would go through all its items (40 ms a million).
            pending.records = records
            self.convert(port)
            return
        buf.extend(records)
        if len(buf) >= CONVERT_ROWS:
            self.convert(port)

    def _append_in_parts(self, port: str, records: list[dict[str, Any]], frame: Any) -> None:
        """A long list, shipped a part at a time (on the sender's thread) as it is converted,
        so the engine stores the first parts while the rest are converted. Its parts are
        the table converting it at once makes (:func:`~patterns.sdk._convert.in_parts`);
        where they would not be, or a record is refused, what was shipped of it is taken
        back (``cut``) and the list appended as any other: converted at once, named errors
        and all. Either way nothing of a refused list stays staged."""
        from patterns.sdk._convert import Disagree, in_parts

        self.flush(port)  # (what was appended before it goes first)
        self.note_site(port, frame)
        sites = self._sites.pop(port, [])
        self.pending(port).forget_site()
        client = self._direct
        parts = in_parts(records, port, LIST_PART_ROWS)
        shipped = 0
        marked = False
        try:
            while True:
                try:
                    part: pa.Table | None = next(parts, None)
                except (Disagree, NodeError):
                    break
                self._sender.wait()  # (the part in flight: staged, or its error raised here)
                if part is None:
                    if marked:
                        self.client.write(port, "keep", None)
                    return
                if not marked:  # (what the engine puts back if the rest cannot follow)
                    try:
                        self.client.write(port, "mark", None)
                    except AtOnce:  # (its table's rules decide per list)
                        break
                    marked = True

                def ship(part: pa.Table = part, offset: int = shipped) -> None:
                    with self._naming_sites(port, offset, sites=sites):
                        client.write(port, "append", part)

                self._sender.submit(ship)
                shipped += part.num_rows
            self._sender.wait()
        except BaseException:
            if marked:  # (a part refused: nothing of the list stays)
                self.client.write(port, "cut", None)
            raise
        if marked:
            self.client.write(port, "cut", None)
        self._sites[port] = sites
        self.pending(port).records = records  # as any list: converted at once
        self.convert(port)

    def note_site(self, port: str, frame: Any) -> None:
        """Remember where node code appended (one entry per change of line), so an error
        found when the buffer is shipped can name the user's file and line. ``frame``: the
        caller of ``Table.append``, the user's unless the SDK itself appended."""
        pending = self.pending(port)
        # A call site is its code object and instruction (cheaper to read than its line,
        # which is only worked out when the site changes).
        code = frame.f_code
        if pending.code is code and pending.lasti == frame.f_lasti:
            return  # the same user call as last time (the stored code is always the user's)
        if code.co_filename.startswith(_SDK_DIR):  # called some other way: find the user
            while frame.f_back is not None and frame.f_code.co_filename.startswith(_SDK_DIR):
                frame = frame.f_back
            code = frame.f_code
        if pending.code is code and pending.lasti == frame.f_lasti:
            return
        pending.code, pending.lasti = code, frame.f_lasti
        index = self._converted_rows.get(port, 0) + len(pending.records)
        self._sites.setdefault(port, []).append((index, (code.co_filename, frame.f_lineno)))

    def _site_of(self, port: str, index: int,
                 sites: list[tuple[int, tuple[str, int]]] | None = None
                 ) -> tuple[str, int] | None:
        found = None
        for start, site in self._sites.get(port, []) if sites is None else sites:
            if start > index:
                break
            found = site
        return found

    def write_frame(self, port: str, op: str, frame: Any, unique_on: list[str] | None = None
                    ) -> None:
        from patterns.sdk._convert import dataframe_to_arrow

        self.flush(port)
        self.client.write(port, op, dataframe_to_arrow(frame, port), unique_on=unique_on)

    def write_records(self, port: str, op: str, records: list[dict[str, Any]],
                      unique_on: list[str] | None = None) -> None:
        from patterns.sdk._convert import records_to_arrow

        self.flush(port)
        data = records_to_arrow(records, port) if records else None
        if data is None and op in ("append", "upsert"):
            return
        self.client.write(port, op, data, unique_on=unique_on)

    def command(self, port: str, op: str) -> None:
        self.flush(port)
        self.client.write(port, op, None)

    def set_options(self, port: str, options: Mapping[str, Any]) -> None:
        self.flush(port)
        self.options_sent[port] = options
        self.client.write(port, "init", None, options=options)

    def flush(self, port: str | None = None) -> None:
        self._sender.wait()  # (its error is named already: not by the sites below)
        ports = [port] if port is not None else list(self._pending)
        for p in ports:
            try:
                for offset, data in self._take(p):
                    with self._naming_sites(p, offset):
                        self.client.write(p, "append", data)
            finally:
                self._forget_sites(p)

    def convert(self, port: str) -> None:
        """Turn the records buffered for ``port`` into Arrow now (the dicts can go: fewer
        live objects for the garbage collector to rescan), and ship once there are
        :data:`FLUSH_ROWS` of them."""
        table = self._convert_buffer(port)
        if table is not None:
            self._converted.setdefault(port, []).append(table)
            self._converted_rows[port] = self._converted_rows.get(port, 0) + table.num_rows
        if self._converted_rows.get(port, 0) >= FLUSH_ROWS:
            self._ship_in_background(port)

    def _ship_in_background(self, port: str) -> None:
        """Ship what is buffered for ``port`` on the sender's thread, node code going on
        meanwhile; a record the engine refuses is named by its file and line then, and
        raised by the node's next request to the engine."""
        self._sender.wait()  # (the one before it refused a record: raise, keeping these)
        pieces = self._take(port)
        sites = self._sites.pop(port, [])
        self.pending(port).forget_site()
        client = self._direct

        def ship() -> None:
            for offset, data in pieces:
                with self._naming_sites(port, offset, sites=sites):
                    client.write(port, "append", data)

        self._sender.submit(ship)

    def _convert_buffer(self, port: str) -> pa.Table | None:
        from patterns.sdk._convert import records_to_arrow

        pending = self._pending.get(port)
        buf = pending.records if pending is not None else None
        if not buf:
            return None
        pending.records = []  # type: ignore[union-attr]
        try:
            return records_to_arrow(buf, port)
        except NodeError:
            try:
                with self._naming_sites(port, self._converted_rows.get(port, 0)):
                    raise
            finally:
                self._forget_sites(port)

    def _take(self, port: str) -> list[tuple[int, pa.Table]]:
        """What is buffered for ``port``, as Arrow tables to ship in this order, each with
        the index of its first record; the buffers are emptied. Tables of the same schema
        go as one."""
        import pyarrow as pa

        last = self._convert_buffer(port)
        tables = self._converted.pop(port, [])
        self._converted_rows.pop(port, None)
        if last is not None:
            tables.append(last)
        pieces: list[tuple[int, pa.Table]] = []
        at = 0
        for table in tables:
            if pieces and pieces[-1][1].schema.equals(table.schema, check_metadata=True):
                pieces[-1] = (pieces[-1][0], pa.concat_tables([pieces[-1][1], table]))
            else:
                pieces.append((at, table))
            at += table.num_rows
        return pieces

    @contextlib.contextmanager
    def _naming_sites(self, port: str, offset: int = 0, *, unknown_record: bool = True,
                      sites: list[tuple[int, tuple[str, int]]] | None = None
                      ) -> Iterator[None]:
        """A record refused while what is buffered for ``port`` is shipped is named by the
        user's file and line that appended it (``offset``: the index of the shipped
        table's first record; ``unknown_record``: also an error that names no record, by
        the first line; ``sites``: the sites of what is shipped, if no longer the port's)."""
        try:
            yield
        except NodeError as exc:
            if exc.record is None and not unknown_record:
                raise
            site = self._site_of(port, offset + (exc.record or 0), sites)
            if site is None:
                raise
            where = f"{os.path.relpath(site[0])}, line {site[1]}"
            raise NodeError(f"{exc} (appended at {where})", record=exc.record) from None

    def _forget_sites(self, port: str) -> None:
        self._sites.pop(port, None)
        self.pending(port).forget_site()

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return self._state

    def set_state(self, doc: dict[str, Any]) -> None:
        self._state = doc
        self._state_dirty = True

    def touch_state(self) -> None:
        self._state_dirty = True

    def adopt_stream(self, port: str, stream: Any) -> None:
        """A new stream on ``port`` takes over from any earlier one in this run."""
        for old in [s for s in self.streams if s._port == port]:
            old._record_position()
            self.streams.remove(old)
        self.streams.append(stream)

    # ------------------------------------------------------------------ checkpoints
    def set_position(self, port: str, position: dict[str, Any] | None) -> None:
        if position is None:
            self.positions.pop(port, None)
        else:
            self.positions[port] = position
        self._positions_dirty.add(port)

    def auto_checkpoint(self) -> None:
        """Called by a stream between two records (the node is between SDK calls, done
        with the previous record): commit if the interval has passed."""
        if time.monotonic() >= self.next_auto_checkpoint and not self.offline:
            self.checkpoint()

    def pass_checkpoint(self) -> None:
        """Called by a stream that finished a pass and found rows committed since, before
        it delivers them: commit what the run did so far, if :data:`PASS_CHECKPOINT_SECONDS`
        have passed since the last checkpoint (so a run that keeps up with a busy upstream
        hands its output on as it goes, instead of only at its end)."""
        if time.monotonic() >= self.last_checkpoint + PASS_CHECKPOINT_SECONDS \
                and not self.offline:
            self.checkpoint()

    def checkpoint(self, *, final: bool = False) -> None:
        self.last_checkpoint = time.monotonic()
        self.next_auto_checkpoint = self.last_checkpoint + self._auto_every
        if self.offline:
            return
        self._sender.wait()  # (its error is named already: not by the sites below)
        # The last buffer to ship goes with the checkpoint itself: one round trip, not two.
        pending = [p for p in {**self._converted, **self._pending}
                   if (p in self._pending and self._pending[p].records)
                   or self._converted.get(p)]
        for p in pending[:-1]:
            self.flush(p)
        for stream in self.streams:
            stream._record_position()
        positions = {p: self.positions.get(p) for p in self._positions_dirty}
        state = self._state if self._state_dirty else None
        if pending:
            last = pending[-1]
            try:
                *first, (offset, data) = self._take(last)
                for at, piece in first:
                    with self._naming_sites(last, at):
                        self.client.write(last, "append", piece)
                # A record the engine refuses is named by its line; an error of the
                # commit itself names no record, and is not blamed on these records.
                with self._naming_sites(last, offset, unknown_record=False):
                    self.client.checkpoint(state, positions,  # type: ignore[arg-type]
                                           final=final, data=(last, data))
            finally:
                self._forget_sites(last)
        else:
            self.client.checkpoint(state, positions, final=final)  # type: ignore[arg-type]
        self._state_dirty = False
        self._positions_dirty.clear()

    def rollback(self) -> None:
        """Back to the last checkpoint: drop buffered and staged writes, state, positions."""
        self._sender.wait(quiet=True)  # (a write in flight is dropped with the rest)
        for pending in self._pending.values():  # (in place: each Table holds its port's)
            pending.records = []
            pending.forget_site()
        self._converted.clear()
        self._converted_rows.clear()
        self._sites.clear()
        info = self.client.rollback()
        self._state = copy.deepcopy(dict(info.state))
        self._state_dirty = False
        self.positions = {k: dict(v) for k, v in info.positions.items()}
        self._positions_dirty.clear()
        for stream in self.streams:
            stream._rolled_back()
        for port, options in self.options_sent.items():  # init() outlives a rollback
            self.client.write(port, "init", None, options=options)

    def settle(self) -> None:
        """Wait for the write in flight, whatever became of it (the node is failing)."""
        self._sender.wait(quiet=True)

    # ------------------------------------------------------------------ time
    def seconds_left(self) -> float:
        return self.info.time_limit_seconds - (time.time() - self.info.started_at)
