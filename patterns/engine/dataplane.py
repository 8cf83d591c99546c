"""The data plane: an Arrow Flight server through which node processes reach the engine.

Every request carries the run's token; the token maps to a :class:`RunSession`, which grants
exactly the tables the node declared. Tables move as Arrow streams (``do_put`` to stage
writes, ``do_get`` to read and stream); small commands are Flight actions with JSON bodies.
Errors a node should see are sent as ``FlightServerError`` with a tagged JSON message that
the SDK turns back into a :class:`~patterns.errors.PatternsError`.

The same server is the engine's door for everything outside a run (the CLI, notebooks): a
request carrying the engine's admin token (from ``.patterns/engine.json``) runs one of the
functions of :mod:`patterns.engine.admin` on the engine's own store (action ``admin``), or
reads rows of any table, any version kept (``do_get`` of kind ``admin_rows``), or answers a
notebook's read-only query (``admin_query``).

It listens on loopback unless told otherwise (:meth:`DataPlane.from_settings`:
``--data-plane-host`` or ``PATTERNS_DATA_PLANE_HOST``, and ``PATTERNS_DATA_PLANE_PORT``), so
that node processes on other machines (Dask workers) can reach it over TCP. A run's token is
valid for that run only, while it runs; the admin token, only from this machine (a request
from another address is refused whatever it carries).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from patterns import wire
from patterns.engine import admin
from patterns.engine.admin import Desk
from patterns.engine.session import Requests, RunSession
from patterns.engine.stream_prefetch import Prefetches, Tally
from patterns.engine.stream_start import ParkedReads, WithData, first_batch
from patterns.errors import PatternsError


class DataPlane(flight.FlightServerBase):  # type: ignore[misc]
    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 advertise: str | None = None) -> None:
        """Listen on ``host`` (``0.0.0.0``: every interface); node processes are told to
        connect to ``advertise`` (default: ``host``, or this machine's name for ``0.0.0.0``)."""
        super().__init__(f"grpc://{_bracketed(host)}:{port}")
        self.host = advertise or (socket.getfqdn() if _any_address(host) else host)
        self.bind_host = host
        self.loopback_only = _is_loopback(host)
        self._sessions: dict[str, RunSession] = {}
        self._lock = threading.Lock()
        self._admin_token: str | None = None
        self._desk: Callable[[], Desk] | None = None
        self._parked = ParkedReads()  # (passes begun on a control channel)
        self._prefetches = Prefetches(self._first_pass, self._parked)
        #: Read a run's first stream passes while its process starts (set by an engine
        #: whose runs get a control channel: patterns.engine.stream_prefetch).
        self.prefetch_passes = False

    @classmethod
    def from_settings(cls, host: str | None = None) -> DataPlane:
        """The data plane as set: ``host`` (``--data-plane-host``), else
        ``PATTERNS_DATA_PLANE_HOST``, else loopback; ``HOST`` may be ``BIND=ADVERTISED``
        (listen on one address, tell nodes another, e.g. ``0.0.0.0=10.0.0.5``). The port is
        ``PATTERNS_DATA_PLANE_PORT`` (default: a free one)."""
        from patterns.errors import ConfigError

        setting = host or os.environ.get("PATTERNS_DATA_PLANE_HOST") or "127.0.0.1"
        bind, _, advertise = setting.partition("=")
        raw_port = os.environ.get("PATTERNS_DATA_PLANE_PORT", "0")
        if not raw_port.isdigit() or int(raw_port) > 65535:
            raise ConfigError(f"PATTERNS_DATA_PLANE_PORT={raw_port!r} is not a port number "
                              f"(0-65535; 0 picks a free one)")
        try:
            return cls(bind.strip(), int(raw_port), advertise.strip() or None)
        except (OSError, pa.ArrowException) as exc:
            raise ConfigError(f"the data plane cannot listen on {bind}:{raw_port} ({exc}): "
                              f"check --data-plane-host / PATTERNS_DATA_PLANE_HOST (an "
                              f"address of this machine) and PATTERNS_DATA_PLANE_PORT (a "
                              f"free port)") from exc

    @property
    def uri(self) -> str:
        """Where node processes reach it."""
        return f"grpc://{_bracketed(self.host)}:{self.port}"

    @property
    def local_uri(self) -> str:
        """Where a client on this machine (the CLI) reaches it."""
        if _any_address(self.bind_host) or self.loopback_only:
            return f"grpc://127.0.0.1:{self.port}"
        return f"grpc://{_bracketed(self.bind_host)}:{self.port}"

    def start(self) -> None:
        """Nothing to do: the server answers from its construction. (pyarrow's blocking
        ``serve()`` is never called: it shuts the server down on SIGINT, which would cut a
        Ctrl-C'd ``patterns run`` or a draining ``patterns serve`` off from its running
        nodes, who would then print transport errors instead of being stopped cleanly.)"""

    def stop(self) -> None:
        self.shutdown()
        self._prefetches.close()

    def admit(self, token: str, desk: Callable[[], Desk]) -> None:
        """Answer admin requests that carry ``token``, on the store ``desk()`` gives."""
        self._admin_token, self._desk = token, desk

    def _admin_desk(self, token: Any, context: Any) -> Desk:
        import hmac

        if not self.loopback_only and not _peer_is_local(context, self.bind_host):
            raise flight.FlightUnauthenticatedError(wire.error_message(
                "auth", "admin requests are only answered from the engine's own machine"))
        expected = self._admin_token
        if expected is None or self._desk is None or not isinstance(token, str) \
                or not hmac.compare_digest(token.encode(), expected.encode()):
            raise flight.FlightUnauthenticatedError(
                wire.error_message("auth", "this engine's admin token is not valid (the "
                                           "engine was restarted? ask again)"))
        return self._desk()

    # ------------------------------------------------------------------ sessions
    def register(self, session: RunSession) -> None:
        with self._lock:
            self._sessions[session.token] = session
        if self.prefetch_passes:
            self._prefetches.start(session)

    def unregister(self, session: RunSession) -> None:
        with self._lock:
            self._sessions.pop(session.token, None)
        self._prefetches.drop(session.token)  # (before the parked reads: it may park one)
        self._parked.drop(session.token)

    def _session(self, token: Any) -> RunSession:
        with self._lock:
            session = self._sessions.get(str(token))
        if session is None:
            raise flight.FlightUnauthenticatedError(
                wire.error_message("auth", "this run's token is not valid (the run is over or "
                                           "was cancelled)"))
        return session

    def serve_channel(self, sock: socket.socket) -> None:
        """Answer a local run's requests on its control channel (see
        :mod:`patterns.engine.channel`) until the run's process closes it."""
        from patterns.engine.channel import serve

        serve(sock, self.channel_request)

    def channel_request(self, body: dict[str, Any], data: bytes | pa.Buffer) -> Any:
        """One request from a run's control channel: an action (``{"action": NAME, ...}``)
        or a write (``{"put": {...}}`` with its Arrow data, maybe a memfd's mapped pages:
        the staged table then uses them, uncopied), as the Flight methods answer
        them; errors are raised as the Flight ones are."""
        put = body.get("put")
        if isinstance(put, dict):
            session = self._session(put.get("token"))
            reader = pa.ipc.open_stream(data)
            self._staged(session, put, reader.read_all())
            return {}
        get = body.get("get")
        if isinstance(get, dict):  # a stream pass: its first batch here, the rest over Flight
            session = self._session(get.get("token"))
            ahead = self._prefetches.take(session.token, get)
            if ahead is not None:  # (read while the run's process started)
                return ahead
            return self._first_pass(session, get, None)
        session = self._session(body.get("token"))
        handler = _ACTIONS.get(str(body.get("action")))
        if handler is None:
            raise flight.FlightServerError(
                wire.error_message("protocol", f"unknown action {body.get('action')}"))
        return _guard(lambda: handler(session, body))

    def _first_pass(self, session: RunSession, cmd: dict[str, Any],
                    tally: Tally | None) -> WithData:
        """The channel's answer to a pass (``tally``: read ahead, its rows counted by it)."""
        pos, schema, batches = self._stream(session, cmd, count=tally is None)
        if tally is not None:
            batches = tally.counted(batches)
        return first_batch(session.token, pos, schema, _retyped(schema, batches),
                           self._parked)

    @staticmethod
    def _stream(session: RunSession, cmd: dict[str, Any], *, count: bool = True,
                ) -> tuple[dict[str, Any], pa.Schema, Iterator[pa.RecordBatch]]:
        pos, schema, batches = _guard(lambda: session.stream(
            cmd["port"], cmd.get("position"), cmd.get("order_by"), cmd.get("starting_value"),
            count=count))
        return pos, schema, batches

    def _staged(self, session: RunSession, cmd: dict[str, Any], data: pa.Table,
                cancelled: bool = False) -> None:
        sent = cmd.get("rows")  # (None: from an SDK that does not say)
        if cancelled or (isinstance(sent, int) and sent != data.num_rows):
            # gRPC ends a put whose node died or dropped its writer half way as it ends a
            # whole one: what came is not what was sent (a checkpoint's position would
            # commit without its rows). Nothing of it is staged; the node, if alive, fails.
            raise flight.FlightServerError(wire.error_message(
                "EngineError", f"a write to table {cmd.get('port')!r} was cut short "
                               f"({data.num_rows} of {sent if sent is not None else '?'} "
                               f"rows arrived): nothing of it was staged or committed"))
        token = cmd.get("token")
        _guard(lambda: session.stage(cmd["port"], cmd["op"], data, cmd.get("unique_on"), None,
                                     token=token))
        checkpoint = cmd.get("checkpoint")
        if checkpoint is not None:  # the node's last writes came with its checkpoint
            # (an error of the commit names no record of these writes: the node must not
            # blame the line that appended them)
            _guard(lambda: _checkpoint(session, {**checkpoint, "token": token}), records=False)

    # ------------------------------------------------------------------ Flight methods
    def do_put(self, context: Any, descriptor: flight.FlightDescriptor,
               reader: flight.MetadataRecordBatchReader, writer: Any) -> None:
        cmd = wire.decode(descriptor.command)
        session = self._session(cmd.get("token"))
        data = reader.read_all()
        self._staged(session, cmd, data, cancelled=context.is_cancelled())

    def do_get(self, context: Any, ticket: flight.Ticket) -> flight.FlightDataStream:
        cmd = wire.decode(ticket.ticket)
        kind = cmd.get("kind")
        if kind in ("admin_rows", "admin_query"):
            return _admin_get(self._admin_desk(cmd.get("token"), context), cmd)
        session = self._session(cmd.get("token"))
        if kind == "read":
            schema, batches = _guard(lambda: session.read(cmd["port"]))
        elif kind == "sql":
            schema, batches = _guard(lambda: session.read_sql(cmd["sql"], cmd.get("params")))
        elif kind == "rest":  # of a pass begun on the control channel (see stream_start)
            schema, batches = self._parked.take(session.token, cmd.get("id"))
            return flight.GeneratorStream(schema, batches)
        elif kind == "stream":
            pos, schema, batches = self._stream(session, cmd)
            schema = schema.with_metadata({**(schema.metadata or {}),
                                           b"patterns.position": wire.encode(pos)})
        else:
            raise flight.FlightServerError(wire.error_message("protocol", f"unknown read {kind}"))
        return flight.GeneratorStream(schema, _retyped(schema, batches))

    def do_action(self, context: Any, action: flight.Action) -> Iterator[flight.Result]:
        if action.type == "ping":  # a warm worker connecting ahead of its run: no session
            return iter([flight.Result(pa.py_buffer(b"{}"))])
        body = wire.decode(action.body.to_pybytes()) if action.body else {}
        if action.type == "admin":
            desk = self._admin_desk(body.get("token"), context)
            function = admin.ACTIONS.get(str(body.get("name")))
            if function is None:
                raise flight.FlightServerError(
                    wire.error_message("protocol", f"unknown admin action {body.get('name')}"))
            result = _guard(lambda: function(desk, **(body.get("args") or {})))
            return iter([flight.Result(pa.py_buffer(wire.encode(result)))])
        session = self._session(body.get("token"))
        handler = _ACTIONS.get(action.type)
        if handler is None:
            raise flight.FlightServerError(
                wire.error_message("protocol", f"unknown action {action.type}"))
        result = _guard(lambda: handler(session, body))
        return iter([flight.Result(pa.py_buffer(wire.encode(result)))])


def _any_address(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _peer_is_local(context: Any, bind_host: str) -> bool:
    """Whether a Flight call comes from this machine: its peer is loopback
    (``ipv4:127.0.0.1:port``, ``ipv6:[::1]:port``), a Unix socket, or the very address the
    data plane listens on."""
    peer = str(context.peer()) if context is not None else ""
    kind, _, rest = peer.partition(":")
    if kind == "unix":
        return True
    address = rest.rsplit(":", 1)[0].strip("[]")
    return _is_loopback(address) or address == bind_host


def _admin_get(desk: Desk, cmd: dict[str, Any]) -> flight.FlightDataStream:
    """Rows of a table (``admin_rows``; what to read travels in the schema's metadata) or a
    notebook's query (``admin_query``), for a reader outside any run."""
    if cmd["kind"] == "admin_query":
        table = _guard(lambda: admin.query(desk, cmd["sql"], cmd.get("params"),
                                           cmd.get("dialect", "postgres")))
        return flight.RecordBatchStream(table)
    scan = _guard(lambda: admin.scan(desk, cmd["table"], cmd.get("version"), cmd.get("limit"),
                                     cmd.get("offset")))
    schema, batches = admin.read_batches(desk.store, scan)
    schema = schema.with_metadata({b"patterns.scan": wire.encode(
        {"names": scan.names, "json_columns": scan.json_columns, "version": scan.version})})
    return flight.GeneratorStream(schema, _retyped(schema, batches))


def _retyped(schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    try:
        for batch in batches:
            yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)
    except PatternsError as exc:
        raise flight.FlightServerError(wire.error_message(type(exc).__name__, str(exc))) from exc


def _guard(call: Callable[[], Any], *, records: bool = True) -> Any:
    try:
        return call()
    except PatternsError as exc:
        record = getattr(exc, "record", None) if records else None
        raise flight.FlightServerError(wire.error_message(
            type(exc).__name__, str(exc), record)) from exc


def _checkpoint(session: RunSession, body: dict[str, Any]) -> dict[str, Any]:
    session.checkpoint(body.get("state"), body.get("positions") or {},
                       final=bool(body.get("final")), token=body.get("token"))
    return {"checkpoints": session.checkpoints}


def _rollback(session: RunSession, body: dict[str, Any]) -> dict[str, Any]:
    session.rollback(token=body.get("token"))
    return session.run_info()


def _command(session: RunSession, body: dict[str, Any]) -> dict[str, Any]:
    session.stage(body["port"], body["op"], None, body.get("unique_on"), body.get("options"),
                  token=body.get("token"))
    return {}


def _execute_sql(session: RunSession, body: dict[str, Any]) -> dict[str, Any]:
    session.execute_sql(body["port"], body["sql"], token=body.get("token"))
    return {}


def _new_run(session: RunSession, body: dict[str, Any]) -> dict[str, Any]:
    def change(requests: Requests) -> None:
        requests.new_run = True
        requests.trigger_downstream = bool(body.get("trigger_downstream", True))
        requests.wait_seconds = body.get("wait_atleast_seconds")

    session.note(body.get("token"), change)
    return {}


def _report_error(session: RunSession, body: dict[str, Any]) -> dict[str, Any]:
    def change(requests: Requests) -> None:
        requests.error = body.get("error")
        requests.traceback = body.get("traceback")

    session.note(body.get("token"), change)
    return {}


def _respond(session: RunSession, body: dict[str, Any]) -> dict[str, Any]:
    from patterns.errors import NodeError

    if session.responder is None:
        raise NodeError("respond_to_request answers response webhooks, which need "
                        "`patterns serve`; there is no request to answer in `patterns run`")
    session.responder(str(body.get("request_key")), body.get("payload"))
    return {}


_ACTIONS: dict[str, Callable[[RunSession, dict[str, Any]], Any]] = {
    "run_info": lambda s, b: {**s.run_info(), "parameters": s.parameters},
    "table_info": lambda s, b: s.table_info(b["port"]),
    "command": _command,
    "execute_sql": _execute_sql,
    "checkpoint": _checkpoint,
    "rollback": _rollback,
    "request_new_run": _new_run,
    "report_error": _report_error,
    "respond": _respond,
}
