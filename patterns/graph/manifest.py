"""The resolved graph of an app as a JSON-able document (``patterns manifest``, the Studio)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, Final

from patterns.errors import Problem
from patterns.graph.model import MISSING, RUNTIME_DEFAULT, Node, ParameterDecl, Settings

if TYPE_CHECKING:
    from patterns.graph.model import App

MANIFEST_VERSION: Final = 1


def app_manifest(app: App) -> dict[str, Any]:
    edges = [
        {"from_node": writer.id, "store": store, "to_node": reader.id}
        for writer in app.nodes
        for store in writer.writes()
        for reader in app.readers_of(store)
        if reader.id != writer.id and writer.parent is None and reader.parent is None
    ]
    return {
        "version": MANIFEST_VERSION,
        "title": app.title,
        "slug": app.slug,
        "root": str(app.root),
        "graph_file": str(app.graph_file),
        "description_file": app.description_file,
        "requirements_file": app.requirements_file,
        "settings": settings_manifest(app.settings),
        "nodes": [_node(app, node) for node in app.nodes],
        "stores": [
            {
                "name": s.name,
                "id": s.id,
                "line": s.line,
                "schema": jsonable(s.schema),
                "display": jsonable(s.display),
                "description": s.description,
                "contract": s.contract,
                "storage": s.storage,
                "storage_table": s.storage_table,
            }
            for s in app.stores
        ],
        # (not the connection: a literal URL may hold a password)
        "storages": [{"name": s.name, "line": s.line} for s in app.storages],
        "warnings": [_problem(p) for p in app.warnings],
        "edges": edges,
        "docs": jsonable(list(app.docs)),
        "dashboards": jsonable(list(app.dashboards)),
        "exposes": jsonable(app.exposes),
        "schemas": jsonable(app.schemas),
    }


def settings_manifest(settings: Settings) -> dict[str, Any]:
    document = asdict(settings)
    document["extra"] = jsonable(dict(settings.extra))
    return document


def _node(app: App, node: Node) -> dict[str, Any]:
    return {
        "id": node.id,
        "kind": node.kind,
        "title": node.title,
        "file": node.rel_file,
        "path": str(node.file) if node.file else None,
        "line": node.line,
        "trigger": node.trigger,
        "webhook_table": node.webhook_table,
        "inputs": dict(node.inputs),
        "outputs": dict(node.outputs),
        "parameter_values": jsonable(dict(node.parameter_values)),
        "settings": settings_manifest(node.settings),
        "interface": {
            "tables": [
                {
                    "port": t.port,
                    "mode": t.mode,
                    "store": node.store_for(t.port),
                    "required": t.required,
                    "description": t.description,
                    "line": t.line,
                }
                for t in node.interface.tables
            ],
            "parameters": [_parameter(p) for p in node.interface.parameters],
            "uses_state": node.interface.uses_state,
        },
        "reads": list(node.reads()),
        "writes": list(node.writes()),
        "downstream": [n.id for n in app.downstream(node)],
        "needs_configuration": [_problem(p) for p in node.needs_configuration],
        "raw": jsonable(dict(node.raw)),
        "parent": node.parent,
        "members": list(node.members),
        "root": str(node.root) if node.root is not None else None,
    }


def _problem(problem: Problem) -> dict[str, Any]:
    return {"file": problem.file, "line": problem.line, "message": problem.message,
            "fix": problem.fix}


def _parameter(decl: ParameterDecl) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": decl.name,
        "type": decl.type,
        "required": decl.required,
        "default_at_run_time": decl.default is RUNTIME_DEFAULT,
        "description": decl.description,
        "connection_kind": decl.connection_kind,
        "line": decl.line,
    }
    if decl.default is not MISSING and decl.default is not RUNTIME_DEFAULT:
        document["default"] = jsonable(decl.default)
    return document


def jsonable(value: Any) -> Any:
    """``value`` with dates as ISO strings and tuples as lists, so json.dumps accepts it."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
