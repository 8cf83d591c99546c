"""The HTTP face of ``patterns serve``: the REST API (``/api/v1``, described by OpenAPI at
``/api/v1/openapi.json``) and the webhook endpoints (``POST /webhooks/{app}/{token}``).

Errors are JSON ``{"error": message}`` with a 4xx status for a request that cannot be done as
asked (unknown app, node, run or table; a malformed body) and 5xx when the server failed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from patterns.errors import GraphError, PatternsError
from patterns.graph.manifest import jsonable
from patterns.server.error_bodies import error_response
from patterns.server.hub import AppService, Hub, loop_listener
from patterns.server.ingest import WebhookFastPath, WebhookResponse, read_body
from patterns.server.lookup import app_node, app_service
from patterns.server.security import Access, WebSafety
from patterns.store.interface import QueueItem
from patterns.store.model import RunStatus

log = logging.getLogger("patterns.server")

MAX_UPLOAD = 50_000_000
SSE_PING_SECONDS = 15.0


# ---------------------------------------------------------------------- response models
class ErrorOut(BaseModel):
    error: str


class AppOut(BaseModel):
    slug: str
    title: str
    root: str
    nodes: int


class RunOut(BaseModel):
    id: str
    #: The id as the CLI and Studio show it (its last 8 characters; the API takes it too).
    short_id: str = ""
    node_id: str
    node_title: str
    trigger: str
    status: RunStatus = Field(description="cancelled: stopped on purpose (Ctrl-C in `patterns "
                                          "run`, POST .../cancel, a server stopping); see "
                                          "docs/concepts.md, Run statuses")
    attempt: int
    queued_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    seconds: float | None = None
    rows_read: dict[str, int] = Field(default_factory=dict)
    rows_written: dict[str, int] = Field(default_factory=dict)
    checkpoints: int = 0
    exit_code: int | None = None
    error: str | None = None
    traceback: str | None = None
    parameters: dict[str, Any] | None = None


class ConfigurationOut(BaseModel):
    """Something a node needs before it can run, where to give it and how."""

    file: str
    line: int | None = None
    message: str
    fix: str | None = None


class NodeOut(BaseModel):
    id: str
    kind: str
    title: str
    file: str | None
    trigger: str | None
    reads: list[str]
    writes: list[str]
    parameters: list[dict[str, Any]]
    last_run: RunOut | None = None
    needs_configuration: list[ConfigurationOut] = Field(
        default_factory=list,
        description="What the node needs before it can run (a parameter value, a secret, a "
                    "storage's connection...); empty when it can run. A node that needs "
                    "configuration is not run; the rest of the app is.")
    #: The nodes a component or subgraph node runs (their ids; GET them by id).
    members: list[str] = []
    next_run: str | None = Field(
        None, description="For a node with a cron trigger: when it runs next (ISO 8601, "
                          "UTC); a time already past fires as soon as the scheduler can. "
                          "Null for other nodes.")


class QueuedOut(BaseModel):
    id: str
    node_id: str
    trigger: str
    not_before: str
    attempt: int
    run_id: str | None = None


class TriggerIn(BaseModel):
    parameters: dict[str, Any] = Field(default_factory=dict)


class LogLine(BaseModel):
    time: str
    stream: str
    text: str
    level: str | None = None


class LogOut(BaseModel):
    run: RunOut
    lines: list[LogLine]


class ColumnOut(BaseModel):
    name: str
    type: str


class TableOut(BaseModel):
    name: str
    version: int
    rows: int
    columns: list[ColumnOut]


class RowsOut(BaseModel):
    table: str
    version: int
    offset: int
    limit: int
    total: int
    rows: list[dict[str, Any]]


class VersionOut(BaseModel):
    version: int
    created_at: str | None = None
    run_id: str | None = None
    reason: str | None = None
    readable: bool = True


class WebhookOut(BaseModel):
    node_id: str
    table: str
    path: str
    respond: bool


class SecretIn(BaseModel):
    value: str


class NamesOut(BaseModel):
    names: list[str]


class OkOut(BaseModel):
    ok: bool = True


class UploadOut(BaseModel):
    version: str
    previous: str


class IngestOut(BaseModel):
    ok: bool = True
    records: int


# ---------------------------------------------------------------------- the application
def create_app(hub: Hub, access: Access) -> FastAPI:
    """The server's API app; ``access`` says who may use it (checked by :class:`WebSafety`,
    its outermost middleware). ``patterns serve`` puts :class:`WebhookFront` around it,
    which serves webhook requests itself after the same Host check."""
    api = FastAPI(title="Patterns", version="1", openapi_url="/api/v1/openapi.json",
                  docs_url=None, redoc_url=None)  # (the docs page: mount_api_docs, offline)
    api.add_middleware(WebhookFastPath, hub=hub)
    api.add_middleware(WebSafety, access=access)

    # (Starlette's HTTPException, FastAPI's parent: the router's own 404 and 405 too)
    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(request, exc)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid request')}"},
                            status_code=422)

    @api.exception_handler(PatternsError)
    async def patterns_error(request: Request, exc: PatternsError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @api.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"error": f"the server failed: {type(exc).__name__}: {exc}"},
                            status_code=500)

    # The token is checked by WebSafety; this only describes it in the OpenAPI document.
    bearer = HTTPBearer(auto_error=False, description="the server token (docs/server.md)")
    router = APIRouter(prefix="/api/v1", dependencies=[Depends(bearer)],
                       responses={400: {"model": ErrorOut}, 401: {"model": ErrorOut},
                                  403: {"model": ErrorOut}, 404: {"model": ErrorOut},
                                  422: {"model": ErrorOut}})

    def service(app: str) -> AppService:
        return app_service(hub, app)

    node_of = app_node

    # ---------------------------------------------------------------- apps and nodes
    @router.get("/apps", response_model=list[AppOut])
    def list_apps() -> list[AppOut]:
        return [AppOut(slug=s.slug, title=s.app.title, root=str(s.root),
                       nodes=sum(n.parent is None for n in s.app.nodes))
                for s in hub.apps.values()]

    @router.get("/apps/{app}/nodes", response_model=list[NodeOut])
    def list_nodes(app: str) -> list[NodeOut]:
        svc = service(app)
        with svc.engine.store.read() as view:
            last = view.runs.latest()
            upcoming = _next_runs(svc.app, view)
        # A component or subgraph shows as one node, with the latest run of its members.
        for n in svc.app.nodes:
            if n.parent is not None and n.id in last:
                top = n
                while top.parent is not None:
                    top = svc.app.node(top.parent)
                if top.id not in last or last[top.id].started_at < last[n.id].started_at:
                    last[top.id] = last[n.id]
        return [_node_out(n, last.get(n.id), upcoming.get(n.id)) for n in svc.app.nodes
                if n.parent is None]

    @router.get("/apps/{app}/nodes/{node}", response_model=NodeOut)
    def get_node(app: str, node: str) -> NodeOut:
        svc = service(app)
        n = node_of(svc, node)
        with svc.engine.store.read() as view:
            runs = view.runs.recent(n.id, 1)
            upcoming = _next_runs(svc.app, view)
        return _node_out(n, runs[0] if runs else None, upcoming.get(n.id))

    @router.post("/apps/{app}/nodes/{node}/trigger", response_model=QueuedOut, status_code=202)
    def trigger(app: str, node: str, body: TriggerIn | None = None) -> QueuedOut:
        svc = service(app)
        n = node_of(svc, node)
        # a component or subgraph: its first nodes run (what they write wakes the rest)
        targets = svc.app.entry_members(n) if n.members else [n]
        if not targets or any(t.kind not in ("python", "sql") for t in targets):
            raise HTTPException(400, f"node {n.label} is a {n.kind} node; it does not run")
        from patterns.engine.parameters import resolve_parameters

        params = dict(body.parameters) if body and body.parameters else None
        if params:
            for target in targets:  # bad values: 400 now, not later
                resolve_parameters(target, svc.engine.secrets, params)
        queued = [svc.scheduler.trigger(t, params) for t in targets]
        return _queued_out(queued[0])

    @router.get("/apps/{app}/queue", response_model=list[QueuedOut])
    def list_queue(app: str) -> list[QueuedOut]:
        return [_queued_out(i) for i in service(app).scheduler.queued()]

    # ---------------------------------------------------------------- runs
    @router.get("/apps/{app}/runs", response_model=list[RunOut])
    def list_runs(app: str, node: str | None = None, status: RunStatus | None = None,
                  limit: int = Query(50, ge=1, le=1000)) -> list[RunOut]:
        svc = service(app)
        node_id = node_of(svc, node).id if node else None
        with svc.engine.store.read() as view:
            runs = view.runs.recent(node_id, limit, status)
        return [_run_out(r) for r in runs]

    def find_run(svc: AppService, run_id: str) -> Any:
        with svc.engine.store.read() as view:
            record = view.runs.get(run_id)
        if record is None:
            raise HTTPException(404, f"no run '{run_id}' in app '{svc.slug}'")
        return record

    @router.get("/apps/{app}/runs/{run_id}", response_model=RunOut)
    def get_run(app: str, run_id: str) -> RunOut:
        return _run_out(find_run(service(app), run_id))

    @router.get("/apps/{app}/runs/{run_id}/logs", response_model=LogOut)
    def get_logs(app: str, run_id: str) -> LogOut:
        svc = service(app)
        record = find_run(svc, run_id)
        live = svc.reporter.live.get(record.id)
        if live is not None:
            lines = [LogLine(**{"time": "", **line}) for line in list(live.lines)]
        else:
            with svc.engine.store.read() as view:
                text = view.logs.get(record.id) or ""
            lines = [_log_line(raw) for raw in text.splitlines() if raw.strip()]
        return LogOut(run=_run_out(record), lines=lines)

    @router.get("/apps/{app}/runs/{run_id}/logs/stream",
                responses={200: {"content": {"text/event-stream": {}}}})
    async def stream_logs(app: str, run_id: str, request: Request) -> StreamingResponse:
        """Server-sent events: ``line`` events (JSON: stream, text, level), then one ``end``
        event (JSON: status, error) when the run ends."""
        svc = service(app)
        record = find_run(svc, run_id)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        listener = loop_listener(loop, events)
        backlog = svc.reporter.subscribe(record.id, listener)
        for _ in range(100):  # recorded as running a moment before its output is followed
            if backlog is not None or find_run(svc, record.id).status != "running":
                break
            await asyncio.sleep(0.02)
            backlog = svc.reporter.subscribe(record.id, listener)

        async def body() -> AsyncIterator[bytes]:
            try:
                if backlog is None:  # finished: its stored log, then the end
                    with svc.engine.store.read() as view:
                        text = view.logs.get(record.id) or ""
                        done = view.runs.get(record.id)
                    for raw in text.splitlines():
                        if raw.strip():
                            yield _sse("line", _log_line(raw).model_dump(exclude_none=True))
                    yield _sse("end", {"status": done.status if done else record.status,
                                       "error": done.error if done else record.error})
                    return
                for line in backlog:
                    yield _sse("line", line)
                while True:
                    try:
                        kind, event = await asyncio.wait_for(events.get(), SSE_PING_SECONDS)
                    except TimeoutError:
                        yield b": ping\n\n"  # (keeps a quiet run's stream alive)
                        continue
                    yield _sse(kind, event)
                    if kind == "end":
                        return
            finally:
                svc.reporter.unsubscribe(record.id, listener)

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @router.post("/apps/{app}/runs/{run_id}/cancel", response_model=OkOut)
    def cancel_run(app: str, run_id: str) -> OkOut:
        svc = service(app)
        record = find_run(svc, run_id)
        if not svc.engine.cancel(record.id, "cancelled through the API"):
            raise HTTPException(409, f"run {record.id} is not running (it is {record.status})")
        return OkOut()

    # ---------------------------------------------------------------- tables
    @router.get("/apps/{app}/tables", response_model=list[TableOut])
    def list_tables(app: str) -> list[TableOut]:
        svc = service(app)
        with svc.engine.store.read() as view:
            return [_table_out(view, m) for m in view.tables.all()]

    def table_meta(svc: AppService, name: str) -> Any:
        with svc.engine.store.read() as view:
            found = view.tables.get(name)
        if found is None:
            raise HTTPException(404, f"no table '{name}' in app '{svc.slug}' (or it has no "
                                     f"rows yet)")
        return found

    @router.get("/apps/{app}/tables/{table}", response_model=TableOut)
    def get_table(app: str, table: str) -> TableOut:
        svc = service(app)
        found = table_meta(svc, table)
        with svc.engine.store.read() as view:
            return _table_out(view, found)

    @router.get("/apps/{app}/tables/{table}/versions", response_model=list[VersionOut])
    def table_versions(app: str, table: str) -> list[VersionOut]:
        svc = service(app)
        table_meta(svc, table)
        with svc.engine.store.read() as view:
            found = view.tables.versions(table)
        return [VersionOut(**jsonable({k: getattr(v, k) for k in VersionOut.model_fields
                                       if hasattr(v, k)}), readable=v.available)
                for v in found]

    @router.get("/apps/{app}/tables/{table}/rows", response_model=RowsOut)
    def table_rows(app: str, table: str, offset: int = Query(0, ge=0, le=2**53),
                   limit: int = Query(100, ge=1, le=10_000)) -> RowsOut:
        from patterns.sdk.table import records_of

        svc = service(app)
        info = table_meta(svc, table)
        with svc.engine.store.read() as view:
            rows = view.scan(info, limit=limit, offset=offset).read_all().to_pylist()
            total = view.tables.count(info)
        return RowsOut(table=table, version=info.version, offset=offset, limit=limit,
                       total=total, rows=jsonable(records_of(rows, info.json_columns())))

    # ---------------------------------------------------------------- state and streams
    @router.get("/apps/{app}/nodes/{node}/state", response_model=dict[str, Any])
    def get_state(app: str, node: str) -> dict[str, Any]:
        svc = service(app)
        n = node_of(svc, node)
        with svc.engine.store.read() as view:
            return dict(jsonable(view.memory.state(n.id)))

    @router.delete("/apps/{app}/nodes/{node}/state", response_model=OkOut)
    def reset_state(app: str, node: str) -> OkOut:
        svc = service(app)
        n = node_of(svc, node)
        busy(svc, n)
        with svc.engine.store.transaction() as tx:
            tx.memory.set_state(n.id, None)
        return OkOut()

    @router.post("/apps/{app}/nodes/{node}/streams/{table}/reset", response_model=OkOut)
    def reset_stream(app: str, node: str, table: str) -> OkOut:
        svc = service(app)
        n = node_of(svc, node)
        if table not in n.reads():
            raise HTTPException(404, f"node {n.label} does not read table '{table}'")
        busy(svc, n)
        with svc.engine.store.transaction() as tx:
            tx.memory.reset_positions(n.id, table)
        return OkOut()

    def busy(svc: AppService, n: Any) -> None:
        if any(i.node_id == n.id and i.run_id for i in svc.scheduler.queued()):
            raise HTTPException(409, f"node {n.label} is running; try again when it is done")

    # ---------------------------------------------------------------- secrets and webhooks
    @router.get("/secrets", response_model=NamesOut)
    def list_secrets() -> NamesOut:
        """The names of the server's secrets (never their values)."""
        from patterns.engine.secrets import SecretStore

        return NamesOut(names=sorted(SecretStore().names()))

    @router.put("/secrets/{name}", response_model=OkOut)
    def set_secret(name: str, body: SecretIn) -> OkOut:
        from patterns.engine.secrets import SecretStore

        SecretStore().set(name, body.value)
        for served in hub.apps.values():  # nodes waiting for this secret may run now
            served.secrets_changed()
        return OkOut()

    # ---------------------------------------------------------------- app versions
    @router.get("/apps/{app}/download", responses={200: {"content": {"application/zip": {}}}})
    def download(app: str) -> Response:
        """The app's files as a zip (no store, no .patterns folder); header X-App-Version is
        their content hash."""
        from patterns.server.bundle import app_version, zip_app

        svc = service(app)
        return Response(zip_app(svc.root), media_type="application/zip",
                        headers={"X-App-Version": app_version(svc.root)})

    @router.post("/apps/{app}/upload", response_model=UploadOut,
                 responses={409: {"model": ErrorOut}})
    async def upload(app: str, request: Request, base: str | None = None,
                     force: bool = False) -> UploadOut:
        """Replace the app's files with a zip of a new version. Refused (409) if the server's
        version is no longer ``base`` (someone else changed it) unless ``force``; refused
        (400, with the problems) if the new version is not a valid app. The old version is
        kept under .patterns/versions/."""
        from patterns.server.bundle import install

        svc = service(app)
        body = await read_body(request, MAX_UPLOAD)
        if body is None:
            raise HTTPException(413, f"the upload is larger than {MAX_UPLOAD} bytes")
        from patterns.server.bundle import VersionConflict

        try:
            version, previous = await asyncio.to_thread(install, svc, body, base, force)
        except VersionConflict as exc:
            raise HTTPException(409, str(exc)) from None
        except GraphError as exc:
            problems = "; ".join(str(p) for p in exc.problems)
            raise HTTPException(400, f"the uploaded app has {len(exc.problems)} problem(s), the "
                                     f"server keeps the current version: {problems}") from None
        return UploadOut(version=version, previous=previous)

    @router.get("/apps/{app}/webhooks", response_model=list[WebhookOut])
    def list_webhooks(app: str) -> list[WebhookOut]:
        svc = service(app)
        nodes = svc.webhook_nodes()
        return [WebhookOut(node_id=node_id, table=str(nodes[node_id].webhook_table),
                           path=f"/webhooks/{svc.slug}/{token}",
                           respond=bool(nodes[node_id].raw.get("respond")))
                for node_id, token in sorted(svc.webhook_tokens().items())]

    api.include_router(router)
    from patterns.server.api_studio import studio_router

    api.include_router(studio_router(hub), dependencies=[Depends(bearer)],
                       responses=router.responses)

    # ---------------------------------------------------------------- webhooks
    @api.post("/webhooks/{app}/{token}", response_model=IngestOut, include_in_schema=True,
              responses={400: {"model": ErrorOut}, 404: {"model": ErrorOut},
                         413: {"model": ErrorOut}, 504: {"model": ErrorOut}})
    async def webhook(app: str, token: str) -> Response:
        """Records from the JSON body, committed before the answer (see docs/server.md).
        (Requests are served by :class:`WebhookFront` ahead of the whole app; this route
        documents the endpoint and serves it when that front is not in place.)"""
        return WebhookResponse(hub, app, token)

    from patterns.server.api_docs import mount_api_docs
    from patterns.server.studio import mount_studio

    mount_api_docs(api)

    mount_studio(api)  # last: its catch-all route serves the Studio's pages
    return api


# ---------------------------------------------------------------------- helpers
def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(jsonable(data))}\n\n".encode()


def _run_out(record: Any) -> RunOut:
    doc = record.to_json()
    doc["rows_read"] = dict(doc.get("rows_read") or {})
    doc["rows_written"] = dict(doc.get("rows_written") or {})
    if doc.get("seconds") is not None and not math.isfinite(doc["seconds"]):
        doc["seconds"] = None
    return RunOut(**{k: v for k, v in jsonable(doc).items() if k in RunOut.model_fields})


def _queued_out(item: QueueItem) -> QueuedOut:
    return QueuedOut(id=item.id, node_id=item.node_id, trigger=item.trigger,
                     not_before=item.not_before.isoformat(), attempt=item.attempt,
                     run_id=item.run_id)


def _next_runs(app: Any, view: Any) -> dict[str, str]:
    """Each cron node's next run (ISO 8601), by node id."""
    from patterns.engine.schedules import next_runs

    return {r.node_id: r.at.isoformat() for r in next_runs(app, view.schedules.all())}


def _node_out(node: Any, last: Any, next_run: str | None = None) -> NodeOut:
    params = [jsonable({"name": p.name, "type": getattr(p, "type", None),
                        "default": getattr(p, "default", None),
                        "description": getattr(p, "description", None)})
              for p in node.interface.parameters]
    return NodeOut(id=node.id, kind=node.kind, title=node.title, file=node.rel_file,
                   trigger=node.trigger, reads=list(node.reads()), writes=list(node.writes()),
                   parameters=params, last_run=_run_out(last) if last is not None else None,
                   needs_configuration=[
                       ConfigurationOut(file=p.file, line=p.line, message=p.message, fix=p.fix)
                       for p in getattr(node, "needs_configuration", ())],
                   members=list(node.members), next_run=next_run)


def _table_out(view: Any, info: Any) -> TableOut:
    return TableOut(name=info.name, version=info.version, rows=view.tables.count(info),
                    columns=[ColumnOut(name=c.name, type=str(c.kind)) for c in info.columns])


def _log_line(raw: str) -> LogLine:
    try:
        stamp, stream, text, *level = json.loads(raw)
    except (ValueError, TypeError):
        return LogLine(time="", stream="stdout", text=raw)
    return LogLine(time=str(stamp), stream=str(stream), text=str(text),
                   level=str(level[0]) if level else None)


__all__ = ["GraphError", "create_app"]
