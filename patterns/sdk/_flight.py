"""The SDK's engine client over Arrow Flight (the data plane)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from patterns import errors, wire
from patterns.sdk._channel import MAX_INLINE_DATA, ChannelClient, ChannelClosed, shared_ipc
from patterns.sdk._context import PortInfo, RunInfo, TableInfo

#: gRPC's options for a node's connection to the engine. Without BDP probing, a stream's
#: receive window stays at gRPC's 64 KB lookahead instead of growing with the measured
#: bandwidth: the engine can then be a batch or so ahead of the node's read, not a dozen of
#: them. Consuming a long stream, the batches the engine had sent and the node not yet
#: read (received into the node's malloc heap) were what grew its memory with the stream's
#: length: 19 MB held steady instead of 50-130 MB that went up and down (bench/RESULTS.md,
#: i15-consume); loopback's latency keeps 64 KB windows far faster than a node reads.
GRPC_OPTIONS = [("grpc.http2.bdp_probe", 0)]


class FlightEngineClient:
    def __init__(self, uri: str, token: str, run_info: str | None = None, *,
                 connection: flight.FlightClient | None = None,
                 channel: ChannelClient | None = None) -> None:
        """``channel``: the run's control channel (a local run's; see
        :mod:`patterns.sdk._channel`), for actions and small writes; Flight connects to
        ``uri`` when first needed."""
        self._uri = uri
        self._connection = connection
        self._channel = channel
        self._token = token
        self._run_info = run_info  # sent along by the engine, to spare the first round trip

    @property
    def _client(self) -> flight.FlightClient:
        if self._connection is None:
            self._connection = flight.connect(self._uri, generic_options=GRPC_OPTIONS)
        return self._connection

    # ------------------------------------------------------------------ plumbing
    def _over_channel(self, body: dict[str, Any], data: bytes | memoryview = b"", *,
                      shared: tuple[int, int] | None = None) -> Any:
        assert self._channel is not None
        try:
            reply = self._channel.request(body, data, shared=shared)
        except ChannelClosed as exc:
            raise self._channel_lost(exc) from None
        if "error" in reply:
            raise _translate(str(reply["error"]))
        return reply.get("result")

    def _channel_lost(self, exc: ChannelClosed) -> errors.EngineError:
        """The channel broke under a request: that request is lost (it may or may not have
        been carried out: the node is told, as when Flight breaks); whatever follows, the
        error report among it, goes over Flight."""
        assert self._channel is not None
        self._channel.close()
        self._channel = None
        return errors.EngineError(f"the engine did not answer: {exc}")

    def _action(self, name: str, **body: Any) -> Any:
        body["token"] = self._token
        if self._channel is not None:
            return self._over_channel({**body, "action": name})
        try:
            results = list(self._client.do_action(flight.Action(name, wire.encode(body))))
        except flight.FlightError as exc:
            raise _translate(exc) from None
        return wire.decode(results[0].body.to_pybytes()) if results else None

    def _get(self, cmd: dict[str, Any]) -> flight.FlightStreamReader:
        cmd["token"] = self._token
        try:
            return self._client.do_get(flight.Ticket(wire.encode(cmd)))
        except flight.FlightError as exc:
            raise _translate(exc) from None

    # ------------------------------------------------------------------ EngineClient
    def run_info(self) -> RunInfo:
        if self._run_info is not None:
            doc, self._run_info = wire.decode(self._run_info.encode()), None
            return _run_info(doc)
        return _run_info(self._action("run_info"))

    def table_info(self, port: str) -> TableInfo:
        doc = self._action("table_info", port=port)
        return TableInfo(**doc)

    def write(self, port: str, op: str, data: pa.Table | None, *,
              unique_on: list[str] | None = None,
              options: Mapping[str, Any] | None = None) -> None:
        if data is None:
            self._action("command", port=port, op=op, unique_on=unique_on,
                         options=dict(options) if options else None)
            return
        self._put({"port": port, "op": op, "unique_on": unique_on}, data)

    def _put(self, cmd: dict[str, Any], data: pa.Table) -> None:
        cmd["token"] = self._token
        # (the engine stages the write only if all of these rows arrived: a put cut short,
        # its process killed or its writer dropped on an error, ends like a whole one)
        cmd["rows"] = data.num_rows
        if self._channel is not None and data.nbytes <= MAX_INLINE_DATA:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, data.schema) as stream:
                stream.write_table(data)
            self._over_channel({"put": cmd}, memoryview(sink.getvalue()))
            return
        shared = shared_ipc(data) if self._channel is not None else None
        if shared is not None:  # (a big write: in shared memory, not through gRPC)
            try:
                self._over_channel({"put": cmd}, shared=shared)
            finally:
                os.close(shared[0])
            return
        descriptor = flight.FlightDescriptor.for_command(wire.encode(cmd))
        try:
            writer, _ = self._client.do_put(descriptor, data.schema)
            writer.write_table(data)
            writer.close()
        except flight.FlightError as exc:
            raise _translate(exc) from None

    def read(self, port: str, *, version: int | None = None) -> Iterator[pa.RecordBatch]:
        return _batches(self._get({"kind": "read", "port": port, "version": version}))

    def read_sql(self, sql: str, params: list[Any] | None = None) -> Iterator[pa.RecordBatch]:
        return _batches(self._get({"kind": "sql", "sql": sql, "params": params}))

    def execute_sql(self, port: str, sql: str) -> None:
        self._action("execute_sql", port=port, sql=sql)

    def stream(self, port: str, position: Mapping[str, Any] | None, order_by: str | None,
               starting_value: Any
               ) -> tuple[dict[str, Any], Iterator[pa.RecordBatch] | list[pa.RecordBatch]]:
        cmd = {"kind": "stream", "port": port, "position": position, "order_by": order_by,
               "starting_value": starting_value}
        if self._channel is not None:
            return self._stream_on_channel(cmd)
        reader = self._get(cmd)
        try:
            schema = reader.schema
        except flight.FlightError as exc:
            raise _translate(exc) from None
        pos = wire.decode((schema.metadata or {})[b"patterns.position"])
        return pos, _batches(reader)

    def _stream_on_channel(self, cmd: dict[str, Any]) -> tuple[
            dict[str, Any], Iterator[pa.RecordBatch] | list[pa.RecordBatch]]:
        """A pass begun on the control channel: its position and first batch come in the
        answer, the rest (if any) over Flight (patterns.engine.stream_start). A pass of one
        batch comes whole: its batches as a list, nothing left to read ahead."""
        assert self._channel is not None
        cmd["token"] = self._token
        try:
            reply, data = self._channel.exchange({"get": cmd})
        except ChannelClosed as exc:
            raise self._channel_lost(exc) from None
        if "error" in reply:
            raise _translate(str(reply["error"]))
        result = reply["result"]
        first = list(pa.ipc.open_stream(data)) if data else []
        if result.get("rest") is None:
            return dict(result["position"]), first

        def batches() -> Iterator[pa.RecordBatch]:
            while first:
                yield first.pop(0)
            yield from _batches(self._get({"kind": "rest", "id": result["rest"]}))

        return dict(result["position"]), batches()

    def checkpoint(self, state: Mapping[str, Any] | None,
                   positions: Mapping[str, Mapping[str, Any]], *, final: bool,
                   data: tuple[str, pa.Table | None] | None = None) -> None:
        checkpoint = {"state": state, "positions": dict(positions), "final": final}
        if data is None or data[1] is None:
            self._action("checkpoint", **checkpoint)
            return
        port, table = data
        self._put({"port": port, "op": "append", "checkpoint": checkpoint}, table)

    def rollback(self) -> RunInfo:
        return _run_info({**self._action("rollback"), "parameters": {}})

    def request_new_run(self, trigger_downstream: bool,
                        wait_atleast_seconds: float | None) -> None:
        self._action("request_new_run", trigger_downstream=trigger_downstream,
                     wait_atleast_seconds=wait_atleast_seconds)

    def respond(self, request_key: str, payload: Any) -> None:
        self._action("respond", request_key=request_key, payload=payload)

    def report_error(self, error: str, traceback: str) -> None:
        self._action("report_error", error=error, traceback=traceback)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._channel is not None:
            self._channel.close()


def preconnect(uri: str) -> flight.FlightClient:
    """A client to the engine at ``uri`` with its connection already made (a ``ping``
    answered), for a warm worker to hand to its next run."""
    client = flight.connect(uri, generic_options=GRPC_OPTIONS)
    list(client.do_action(flight.Action("ping", b"")))
    return client


def _run_info(doc: dict[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=doc["run_id"], node_id=doc["node_id"], node_file=doc["node_file"],
        ports={p: PortInfo(p, v["store"], v["mode"], v.get("connected", True)) for p, v in doc["ports"].items()},
        parameters=doc.get("parameters") or {}, state=doc["state"],
        positions=doc["positions"], time_limit_seconds=doc["time_limit_seconds"],
        started_at=doc["started_at"],
        checkpoint_seconds=float(doc.get("checkpoint_seconds") or 30.0),
    )


def _batches(reader: flight.FlightStreamReader) -> Iterator[pa.RecordBatch]:
    try:
        for chunk in reader:
            yield chunk.data
    except flight.FlightError as exc:
        raise _translate(exc) from None


def _translate(exc: Exception | str) -> errors.PatternsError:
    parsed = wire.parse_error(str(exc))
    if parsed is None:
        return errors.EngineError(f"the engine did not answer: {exc}")
    kind, message, record = parsed
    cls = getattr(errors, kind, None)
    if cls is errors.NodeError or not (isinstance(cls, type)
                                       and issubclass(cls, errors.PatternsError)):
        return errors.NodeError(message, record=record)
    if cls is errors.GraphError:
        return errors.NodeError(message)
    return cls(message)  # type: ignore[no-any-return]
