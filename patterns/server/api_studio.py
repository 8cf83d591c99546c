"""REST endpoints the Studio needs beyond the CLI's (under ``/api/v1``, in the OpenAPI
document): the app's graph for the canvas, a node's source (read, validate and save), live
status over server-sent events, pages of a table's rows (keyset paging, sort, filter),
downloads, chart specs, and deleting a secret. See docs/studio.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from patterns.errors import GraphError, PatternsError
from patterns.graph.manifest import jsonable
from patterns.server.hub import AppService, Hub
from patterns.server.lookup import app_node, app_service
from patterns.server.studio_live import StreamOut, live_snapshot, snapshot, stream_lags

EVENT_SECONDS = 0.1
PING_SECONDS = 15.0
MAX_SOURCE = 2_000_000
CHART_ROWS = 5_000


class ProblemOut(BaseModel):
    file: str
    line: int | None = None
    message: str
    fix: str | None = None
    node: str | None = None


class GraphNodeOut(BaseModel):
    id: str
    kind: str
    title: str
    file: str | None
    trigger: str | None
    reads: list[str]
    writes: list[str]
    display: dict[str, Any] | None = None
    chart_input: str | None = None
    parameters: list[dict[str, Any]] = Field(default_factory=list)
    status: str | None = None
    problems: list[ProblemOut] = Field(default_factory=list)
    #: What the node needs before it runs (it is skipped until then); see NodeOut.
    needs_configuration: list[ProblemOut] = Field(default_factory=list)
    #: The component or subgraph node it runs inside (None: top level), and a component's or
    #: subgraph's own nodes (the canvas shows them as a group to expand).
    parent: str | None = None
    members: list[str] = Field(default_factory=list)


class GraphStoreOut(BaseModel):
    name: str
    id: str | None
    display: dict[str, Any] | None = None
    rows: int | None = None


class GraphOut(BaseModel):
    slug: str
    title: str
    nodes: list[GraphNodeOut]
    stores: list[GraphStoreOut]
    docs: list[dict[str, Any]]
    dashboards: list[dict[str, Any]]
    problems: list[ProblemOut]


class SourceOut(BaseModel):
    file: str
    language: str
    text: str
    #: A hash of the file as read: give it back as ``base`` when saving, to be told (409) if
    #: the file changed since.
    version: str = ""


class SourceIn(BaseModel):
    text: str
    #: The ``version`` the edit started from; the save is refused (409) if the file is no
    #: longer that version. Without it, the file is overwritten whatever it holds.
    base: str | None = None


class SaveOut(BaseModel):
    saved: bool
    problems: list[ProblemOut] = Field(default_factory=list)
    #: The file's version once saved (the ``base`` of the next save).
    version: str | None = None


class PageOut(BaseModel):
    table: str
    version: int
    total: int
    rows: list[dict[str, Any]]
    next: str | None = None


class StatusOut(BaseModel):
    nodes: dict[str, str]
    stores: dict[str, int]


class ChartOut(BaseModel):
    node: str
    table: str | None
    spec: dict[str, Any] | None
    rows: list[dict[str, Any]]
    error: str | None = None


def studio_router(hub: Hub) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    def service(app: str) -> AppService:
        return app_service(hub, app)

    node_of = app_node

    @router.get("/apps/{app}/graph", response_model=GraphOut)
    def graph(app: str) -> GraphOut:
        """Everything the canvas draws: nodes (with their last run's status and the
        problems validation finds in their files now), stores (with row counts), docs cards
        and dashboards."""
        svc = service(app)
        problems = current_problems(svc)
        status, counts = snapshot(svc)
        nodes = [GraphNodeOut(
            id=n.id, kind=n.kind, title=n.title, file=n.rel_file, trigger=n.trigger,
            reads=list(n.reads()), writes=list(n.writes()), display=_display(n.raw.get("display")),
            chart_input=n.raw.get("chart_input"), status=status.get(n.id),
            parameters=[_parameter(p) for p in n.interface.parameters],
            problems=[p for p in problems if p.node == n.id or (n.rel_file and p.file ==
                                                                n.rel_file)],
            needs_configuration=[ProblemOut(file=p.file, line=p.line, message=p.message,
                                            fix=p.fix, node=p.node)
                                 for p in n.needs_configuration],
            parent=n.parent, members=list(n.members))
            for n in svc.app.nodes]
        stores = [GraphStoreOut(name=s.name, id=s.id, display=_display(s.display),
                                rows=counts.get(s.name)) for s in svc.app.stores]
        return GraphOut(slug=svc.slug, title=svc.app.title, nodes=nodes, stores=stores,
                        docs=[dict(jsonable(d)) for d in svc.app.docs if isinstance(d, dict)],
                        dashboards=[dict(jsonable(d)) for d in svc.app.dashboards
                                    if isinstance(d, dict)],
                        problems=problems)

    @router.get("/apps/{app}/events", response_model=StatusOut,
                responses={200: {"content": {"text/event-stream": {}}}})
    async def events(app: str, request: Request) -> Any:
        """Each node's last run status (``nodes``) and each table's row count (``stores``).
        Asked with ``Accept: text/event-stream`` (as a browser's EventSource does): server-sent
        events, a ``status`` event at once and whenever either changes (checked every
        0.1 s; tables counted again only after a commit), until the client goes; otherwise
        the current status once, as JSON."""
        svc = service(app)
        if "text/event-stream" not in request.headers.get("accept", ""):
            status, counts = await asyncio.to_thread(snapshot, svc)
            return StatusOut(nodes=status, stores=counts)

        async def body() -> AsyncIterator[bytes]:
            last: Any = None
            quiet = 0.0
            counted: tuple[int, float, dict[str, int]] | None = None
            while not await request.is_disconnected():
                status, counts, counted = await asyncio.to_thread(live_snapshot, svc, counted)
                now = {"nodes": status, "stores": counts}
                if now != last:
                    last, quiet = now, 0.0
                    yield f"event: status\ndata: {json.dumps(now)}\n\n".encode()
                elif quiet >= PING_SECONDS:
                    quiet = 0.0
                    yield b": ping\n\n"
                await asyncio.sleep(EVENT_SECONDS)
                quiet += EVENT_SECONDS

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    # ---------------------------------------------------------------- sources
    @router.get("/apps/{app}/nodes/{node}/source", response_model=SourceOut)
    def get_source(app: str, node: str) -> SourceOut:
        svc = service(app)
        n = node_of(svc, node)
        if n.file is None or n.rel_file is None:
            raise HTTPException(404, f"node {n.label} has no file of its own")
        return _source(n.rel_file, Path(n.file))

    @router.put("/apps/{app}/nodes/{node}/source", response_model=SaveOut)
    def save_source(app: str, node: str, body: SourceIn) -> SaveOut:
        """Validate the app with this text as the node's file, then write it and reload the
        app. An invalid result is not written (``saved: false``, with its problems: the
        server keeps the current file)."""
        svc = service(app)
        n = node_of(svc, node)
        if n.file is None or n.rel_file is None:
            raise HTTPException(404, f"node {n.label} has no file of its own")
        if len(body.text.encode()) > MAX_SOURCE:
            raise HTTPException(413, f"the file is larger than {MAX_SOURCE} bytes")
        return _save(svc, n.rel_file, body.text, body.base)

    # ---------------------------------------------------------------- the app's files
    @router.get("/apps/{app}/files", response_model=list[str])
    def list_files(app: str) -> list[str]:
        """The app's own files (not the store, caches or VCS), relative to its folder."""
        from patterns.server.bundle import app_files

        return [p.as_posix() for p in app_files(service(app).root)]

    @router.get("/apps/{app}/files/{path:path}", response_model=SourceOut)
    def get_file(app: str, path: str) -> SourceOut:
        svc = service(app)
        target = svc.root / _app_path(path)
        if not target.is_file():
            raise HTTPException(404, f"no file '{path}' in app '{svc.slug}'")
        return _source(path, target)

    @router.put("/apps/{app}/files/{path:path}", response_model=SaveOut)
    def save_file(app: str, path: str, body: SourceIn) -> SaveOut:
        """Write (or create: a shared module that belongs to no node) one of the app's text
        files, graph.yml included, if the app stays valid; as a node's source."""
        svc = service(app)
        if len(body.text.encode()) > MAX_SOURCE:
            raise HTTPException(413, f"the file is larger than {MAX_SOURCE} bytes")
        return _save(svc, _app_path(path).as_posix(), body.text, body.base)

    # ---------------------------------------------------------------- tables
    @router.get("/apps/{app}/tables/{table}/page", response_model=PageOut)
    def table_page(app: str, table: str, sort: str | None = None, desc: bool = False,
                   where: str | None = None, op: str = "eq", value: str | None = None,
                   after: str | None = None, limit: int = Query(100, ge=1, le=1000),
                   version: int | None = None) -> PageOut:
        """One page of rows: sorted on ``sort`` (``desc`` for descending; by id otherwise),
        filtered by ``where`` ``op`` ``value`` (op: eq ne gt gte lt lte contains null
        notnull), starting after the cursor ``after`` (the ``next`` of the page before);
        of the table's version ``version`` (one of its ``versions`` still kept) or the
        current one."""
        from patterns.server.table_pages import PageQuery, read_page

        svc = service(app)
        meta = _table(svc, table)
        ask = PageQuery(sort=sort, descending=desc, where=where, op=op, value=value,
                        after=after, limit=limit)
        with svc.engine.store.read() as view:
            if version is not None and version != meta.version:
                meta = _table_version(view, meta, version)
            rows, following = read_page(view, meta, ask)
            total = view.tables.count(meta)
        return PageOut(table=table, version=meta.version, total=total, rows=rows,
                       next=following)

    @router.get("/apps/{app}/tables/{table}/download",
                responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {},
                                             "application/vnd.apache.parquet": {}}}})
    def download_table(app: str, table: str,
                       format: Literal["csv", "jsonl", "parquet"] = "csv") -> FileResponse:
        """The table's current rows as a CSV, JSON-lines or Parquet file."""
        from patterns.server.downloads import write_rows

        svc = service(app)
        meta = _table(svc, table)
        folder = tempfile.mkdtemp(prefix="patterns-download-")
        path = Path(folder) / f"{table}.{format}"
        try:
            with svc.engine.store.read() as view:
                write_rows(view.scan(meta), format, path, meta.json_columns())
        except BaseException:
            shutil.rmtree(folder, True)
            raise
        media = {"csv": "text/csv", "jsonl": "application/x-ndjson",
                 "parquet": "application/vnd.apache.parquet"}[format]
        return FileResponse(path, media_type=media, filename=path.name,
                            background=BackgroundTask(shutil.rmtree, folder, True))

    @router.get("/apps/{app}/streams", response_model=list[StreamOut])
    def streams(app: str, node: str | None = None, table: str | None = None
                ) -> list[StreamOut]:
        """Each node's stream over each table it reads (``node``, ``table``: only those),
        with how many rows of the table it has not read yet. Reset one with ``POST
        /apps/{app}/nodes/{node}/streams/{table}/reset``."""
        svc = service(app)
        wanted = node_of(svc, node).id if node is not None else None
        return [s for s in stream_lags(svc) if (wanted is None or s.node == wanted)
                and (table is None or s.table == table)]

    # ---------------------------------------------------------------- charts
    @router.get("/apps/{app}/charts/{node}", response_model=ChartOut)
    def chart(app: str, node: str) -> ChartOut:
        """A chart node's Vega-Lite spec and the rows of its ``chart_input`` (at most 5,000);
        a spec that is not JSON comes back as ``error``."""
        svc = service(app)
        n = node_of(svc, node)
        if n.kind != "chart" or n.file is None:
            raise HTTPException(400, f"node {n.label} is a {n.kind} node, not a chart")
        table = n.raw.get("chart_input")
        spec, error = None, None
        try:
            spec = json.loads(Path(n.file).read_text(encoding="utf-8"))
            if not isinstance(spec, dict):
                spec, error = None, f"{n.rel_file}: a chart spec is a JSON object"
        except (OSError, ValueError) as exc:
            error = f"{n.rel_file}: not a JSON Vega-Lite spec: {exc}"
        rows: list[dict[str, Any]] = []
        with svc.engine.store.read() as view:
            meta = view.tables.get(str(table)) if table else None
            found = view.scan(meta, limit=CHART_ROWS).read_all().to_pylist() if meta else []
        if meta is not None:
            from patterns.sdk.table import records_of

            rows = jsonable(records_of(found, meta.json_columns()))
        return ChartOut(node=n.id, table=table, spec=spec, rows=rows, error=error)

    # ---------------------------------------------------------------- secrets
    @router.delete("/secrets/{name}", response_model=dict[str, bool])
    def delete_secret(name: str) -> dict[str, bool]:
        from patterns.engine.secrets import SecretStore

        if not SecretStore().delete(name):
            raise HTTPException(404, f"no secret '{name}' on this server")
        return {"ok": True}

    return router


# ---------------------------------------------------------------------- helpers
#: The last validation of each app's files: (their names, sizes and times, its problems).
_VALIDATED: dict[Path, tuple[Any, list[ProblemOut]]] = {}


def current_problems(svc: AppService) -> list[ProblemOut]:
    """What validation finds in the app's files now (empty when they are valid); validated
    again only when a file changed (loading 100 nodes takes a few hundred milliseconds, which
    the canvas's first load should not wait for each time)."""
    from patterns.graph.loader import load_app
    from patterns.server.bundle import app_files

    files = sorted(app_files(svc.root))
    stamp = []
    for rel in files:
        with contextlib.suppress(OSError):
            found = (svc.root / rel).stat()
            stamp.append((rel.as_posix(), found.st_size, found.st_mtime_ns))
    known = _VALIDATED.get(svc.root)
    if known is not None and known[0] == stamp:
        return list(known[1])
    problems: list[ProblemOut] = []
    try:
        load_app(svc.root)
    except GraphError as exc:
        problems = [_problem(p) for p in exc.problems]
    except PatternsError as exc:
        problems = [ProblemOut(file="graph.yml", message=str(exc))]
    _VALIDATED[svc.root] = (stamp, problems)
    return list(problems)


def _validate_with(root: Path, rel_file: str, text: str) -> list[ProblemOut]:
    """The problems of the app at ``root`` if ``rel_file`` held ``text``."""
    from patterns.graph.loader import load_app
    from patterns.server.bundle import app_files

    with tempfile.TemporaryDirectory(prefix="patterns-save-") as tmp:
        staged = Path(tmp) / "app"
        for rel in app_files(root):
            target = staged / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, target)
        (staged / rel_file).parent.mkdir(parents=True, exist_ok=True)
        (staged / rel_file).write_text(text, encoding="utf-8")
        try:
            load_app(staged)
        except GraphError as exc:
            return [_problem(p) for p in exc.problems]
        except PatternsError as exc:
            return [ProblemOut(file=rel_file, message=str(exc))]
    return []


def _file_version(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()[:16]


def _source(rel_file: str, path: Path) -> SourceOut:
    data = path.read_bytes()
    return SourceOut(file=rel_file, language=_language(rel_file), version=_file_version(data),
                     text=data.decode("utf-8", errors="replace"))


def _save(svc: AppService, rel_file: str, text: str, base: str | None = None) -> SaveOut:
    """Validate the app with ``text`` in ``rel_file``; if valid, write it and reload. With
    ``base``, a file that is no longer that version is a 409 (changed since it was opened)."""
    with svc.install_lock:
        target = svc.root / rel_file
        if base is not None and target.is_file() and _file_version(target.read_bytes()) != base:
            raise HTTPException(409, f"{rel_file} changed on disk since you opened it (another "
                                     f"editor, a save from another tab, or an upload): nothing "
                                     f"was saved; reload it to see the change, or save again "
                                     f"to overwrite it with your text")
        problems = _validate_with(svc.root, rel_file, text)
        if problems:
            return SaveOut(saved=False, problems=problems)
        target = svc.root / rel_file
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.studio-save")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
        svc.reload()
    return SaveOut(saved=True, version=_file_version(text.encode("utf-8")))


TEXT_FILES = (".py", ".sql", ".json", ".md", ".yml", ".yaml", ".txt", ".csv")


def _app_path(path: str) -> PurePosixPath:
    """``path`` as a file of the app: relative, inside its folder, a text file, not in the
    store or a cache; else a 400 saying why."""
    from patterns.server.bundle import SKIP_DIRS

    rel = PurePosixPath(path)
    if not path or rel.is_absolute() or ".." in rel.parts or "\\" in path or "\0" in path:
        raise HTTPException(400, f"'{path}' is not a path inside the app's folder: give one "
                                 f"like lib/helpers.py")
    if any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts):
        raise HTTPException(400, f"'{path}' is in a folder the app's files never are "
                                 f"({', '.join(sorted(SKIP_DIRS))} or a hidden one)")
    if rel.suffix.lower() not in TEXT_FILES:
        raise HTTPException(400, f"'{path}' is not a text file the Studio edits: use one of "
                                 f"{', '.join(TEXT_FILES)}")
    return rel


def _problem(problem: Any) -> ProblemOut:
    return ProblemOut(file=str(problem.file), line=problem.line, message=problem.message,
                      fix=problem.fix, node=problem.node)


def _table(svc: AppService, name: str) -> Any:
    with svc.engine.store.read() as view:
        found = view.tables.get(name)
    if found is None:
        raise HTTPException(404, f"no table '{name}' in app '{svc.slug}' (or it has no rows "
                                 f"yet)")
    return found


def _table_version(view: Any, meta: Any, number: int) -> Any:
    """``meta`` as of its version ``number``; a 404 saying which versions are kept if that
    one is not (a version's rows are dropped once no reader needs them)."""
    versions = view.tables.versions(meta.name)
    found = next((v for v in versions if v.version == number), None)
    if found is None or not found.available:
        kept = ", ".join(str(v.version) for v in versions if v.available) or "none"
        why = "was dropped" if found is not None else "does not exist"
        raise HTTPException(404, f"version {number} of table '{meta.name}' {why}; the versions "
                                 f"whose rows are kept: {kept}")
    return view.tables.as_of(meta, found)


def _parameter(decl: Any) -> dict[str, Any]:
    from patterns.graph.model import MISSING, RUNTIME_DEFAULT

    default = None if decl.default in (MISSING, RUNTIME_DEFAULT) else decl.default
    return dict(jsonable({"name": decl.name, "type": decl.type, "default": default,
                          "description": decl.description}))


def _display(value: Any) -> dict[str, Any] | None:
    return dict(jsonable(value)) if isinstance(value, dict) else None


def _language(rel_file: str) -> str:
    return {".py": "python", ".sql": "sql", ".json": "json", ".md": "markdown", ".yml": "yaml",
            ".yaml": "yaml"}.get(
        Path(rel_file).suffix.lower(), "text")
