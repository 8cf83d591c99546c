"""Components (``uses:``) and subgraphs (``node_file: sub/graph.yml``): graphs inside a graph.

The inner graph is loaded as an app of its own (every problem reported with its file), then
flattened into the outer app: its nodes become nodes of the app that run as usual (reactive
across the boundary, since they read and write the app's stores), with scoped ids, while the
component or subgraph node stays as the one node the API and the Studio show (its
``members`` are the nodes it runs).

Stores: what the inner graph ``exposes`` as inputs and outputs binds to the app's stores
through the node's ``inputs``/``outputs`` mapping (a name not mapped binds to the store of the
same name); every other inner store is private to the node and gets the scoped name
``<scope>__<name>`` (scope: the subgraph's folder, or the component node's id). An inner graph
with no ``exposes`` shares all its stores with the app under their own names.
Parameters: the node's ``parameter_values`` go to the inner nodes declaring them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from patterns.errors import ComponentError, GraphError, Problem
from patterns.graph.components import MANIFEST_KEYS, resolve
from patterns.graph.functions import NodeEntry
from patterns.graph.ids import derived_id
from patterns.graph.model import App, Node, NodeInterface, ParameterDecl, StoreDecl

if TYPE_CHECKING:
    from patterns.graph.loader import _Loading

MAX_NESTING: Final = 8
#: The manifests being loaded, outermost first (to refuse a graph that contains itself).
_loading: ContextVar[tuple[Path, ...]] = ContextVar("patterns_nesting", default=())
OVERRIDE_FILE: Final = "--param"


class _NotInstalled(Exception):
    """A component node whose component is not installed (it needs configuration)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def expand_nested(loading: _Loading, entries: list[NodeEntry], stores: list[StoreDecl]
                  ) -> tuple[list[NodeEntry], list[StoreDecl]]:
    """``entries`` with each component and subgraph node followed by the nodes it runs, and
    the stores private to them; problems go to ``loading.problems``."""
    out: list[NodeEntry] = []
    added: list[StoreDecl] = []
    taken = {s.name for s in stores}
    for entry in entries:
        node = entry.node
        if node.kind not in ("component", "subgraph"):
            out.append(entry)
            continue
        try:
            found = _inner_app(loading, entry)
        except _NotInstalled as missing:
            needs = (*node.needs_configuration, missing.problem)
            out.append(replace(entry, node=replace(node, needs_configuration=needs)))
            continue
        if found is None:
            out.append(entry)
            continue
        inner, display, root = found
        container, members, private = _flatten(loading, entry, inner, display, root, taken)
        taken.update(s.name for s in private)
        added += private
        out.append(replace(entry, node=container))
        out += [NodeEntry(m, entry.path, discovered=False) for m in members]
    return out, added


def _inner_app(loading: _Loading, entry: NodeEntry) -> tuple[App, str, Path | None] | None:
    """The inner graph, loaded; how problems name its folder; the folder its nodes run from
    (None: the app's, for a subgraph)."""
    node = entry.node
    line = loading.lines.line(entry.path)
    if len(_loading.get()) >= MAX_NESTING:
        loading.problems.append(Problem(loading.rel, line, f"{node.label} nests components or "
                                        f"subgraphs more than {MAX_NESTING} deep",
                                        "check for a component that uses itself", node.label))
        return None
    if node.kind == "subgraph":
        if node.file is None or not node.file.is_file():
            return None  # already reported: the node_file does not exist
        manifest, display, root = node.file, str(Path(node.rel_file or "").parent), None
    else:
        uses = str(node.raw.get("uses", ""))
        try:
            component = resolve(uses, loading.root)
        except ComponentError as error:  # the node needs configuration; the app loads
            raise _NotInstalled(Problem(loading.rel, loading.lines.line((*entry.path, "uses")),
                                        f"node {node.id}: {error}", None, node.label)) from None
        manifest, display, root = component.manifest, component.ref, component.root
    outer = (*_loading.get(), (loading.root / loading.rel).resolve())
    if manifest.resolve() in outer:
        loading.problems.append(Problem(loading.rel, line, f"{node.label} contains itself "
                                        f"(through {manifest.name})",
                                        "a component or subgraph cannot include the graph it is "
                                        "part of", node.label))
        return None
    token = _loading.set(outer)
    try:
        return _load_inner(manifest, dict(node.parameter_values)), display, root
    except GraphError as error:
        loading.problems += [_outer_problem(p, display, loading, entry) for p in error.problems]
        return None
    finally:
        _loading.reset(token)


def _load_inner(manifest: Path, values: Mapping[str, Any]) -> App:
    """Load the graph of ``manifest``, with ``values`` for its nodes' parameters; the
    component's own keys (version, tags, icon) set aside."""
    from patterns.graph.loader import _Loading, read_graph_document

    rel = manifest.name
    document = read_graph_document(manifest, rel)
    data = dict(document.data) if isinstance(document.data, dict) else {}
    for key in MANIFEST_KEYS:
        data.pop(key, None)
    _declare_exposed_stores(data)
    loading = _Loading(root=manifest.parent.resolve(), rel=rel, lines=document.lines,
                       problems=list(document.problems))
    app = loading.build(data, values)
    if loading.problems or app is None:
        raise GraphError(list(dict.fromkeys(loading.problems)))
    return app


def _declare_exposed_stores(data: dict[str, Any]) -> None:
    """Exposed inputs and outputs are stores of the inner graph even when not listed."""
    exposes = data.get("exposes")
    stores = data.get("stores")
    if not isinstance(exposes, dict) or not (stores is None or isinstance(stores, list)):
        return
    listed = {str(s.get("table") or s.get("stream")) for s in stores or [] if isinstance(s, dict)}
    extra = [{"table": n} for kind in ("inputs", "outputs") for n in exposed(exposes, kind)
             if n not in listed]
    if extra:
        data["stores"] = [*(stores or []), *extra]


def exposed(exposes: Any, kind: str) -> list[str]:
    """The names an ``exposes:`` block gives for ``kind`` (a list of names or of mappings
    with ``name``, or a mapping of name to description)."""
    if not isinstance(exposes, dict):
        return []
    items = exposes.get(kind) or []
    if isinstance(items, dict):
        return [str(k) for k in items]
    names = []
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, dict):
            name = item.get("name") or item.get("table") or next(iter(item), None)
            if name is not None:
                names.append(str(name))
        elif item is not None:
            names.append(str(item))
    return names


def _outer_problem(problem: Problem, display: str, loading: _Loading,
                   entry: NodeEntry) -> Problem:
    """A problem of the inner graph as the outer graph reports it."""
    if problem.file == OVERRIDE_FILE:  # a parameter value given by the outer node
        named = re.match(r"override (\S+?)=", problem.message)
        name = named[1] if named else ""
        line = loading.lines.line((*entry.path, "parameter_values", name))
        message = (f"{entry.node.label} has no parameter '{name}'" if "no node declares" in
                   problem.message else problem.message)
        return Problem(loading.rel, line, message, problem.fix, entry.node.label)
    prefix = "" if display in ("", ".") else display.rstrip("/") + "/"
    return replace(problem, file=prefix + problem.file)


def _flatten(loading: _Loading, entry: NodeEntry, inner: App, display: str, root: Path | None,
             taken: set[str]) -> tuple[Node, list[Node], list[StoreDecl]]:
    node = entry.node
    subgraph = node.kind == "subgraph"
    scope = _scope(node, display if subgraph else node.id)
    exposes = inner.exposes
    inputs, outputs = dict(node.inputs), dict(node.outputs)
    _check_ports(loading, entry, exposes, inputs, outputs)
    if isinstance(exposes, dict):
        for name in exposed(exposes, "inputs"):
            inputs.setdefault(name, name)
        for name in exposed(exposes, "outputs"):
            outputs.setdefault(name, name)
    bound = {**inputs, **outputs}
    names: dict[str, str] = {}
    private: list[StoreDecl] = []
    for store in inner.stores:
        if store.name in bound:
            names[store.name] = bound[store.name]
        elif exposes is None:
            names[store.name] = store.name
            if store.name not in taken:
                private.append(store)
        else:
            names[store.name] = f"{scope}__{store.name}"
            private.append(replace(store, name=names[store.name], line=node.line))
    if exposes is None:  # everything is shared: written stores are outputs, others inputs
        written = {store for m in inner.nodes for store in m.writes()}
        outputs = {**outputs, **{n: names[n] for n in names if n in written}}
        inputs = {**inputs, **{n: names[n] for n in names if n not in written}}
    ids = {m.id: derived_id(f"{node.id}/{m.id}") for m in inner.nodes}
    members = [_member(m, node, names, ids, root, display if subgraph else None)
               for m in inner.nodes]
    container = replace(node, inputs=inputs, outputs=outputs,
                        members=tuple(m.id for m in members if m.parent == node.id),
                        interface=NodeInterface(parameters=_parameters(inner, exposes)))
    return container, members, private


def _scope(node: Node, base: str) -> str:
    scoped = re.sub(r"[^A-Za-z0-9_]+", "_", base).strip("_")
    return scoped or node.id


def _check_ports(loading: _Loading, entry: NodeEntry, exposes: Any,
                 inputs: Mapping[str, str], outputs: Mapping[str, str]) -> None:
    if not isinstance(exposes, dict):
        return
    node = entry.node
    for kind, given in (("inputs", inputs), ("outputs", outputs)):
        valid = exposed(exposes, kind)
        for port in given:
            if port not in valid:
                loading.problems.append(Problem(
                    loading.rel, loading.lines.line((*entry.path, kind, port)),
                    f"{node.label} exposes no {kind[:-1]} '{port}'",
                    f"its {kind} are {', '.join(valid) or 'none'}", node.label))
    valid = exposed(exposes, "parameters")
    if "parameters" in exposes:
        for name in node.parameter_values:
            if name not in valid:
                loading.problems.append(Problem(
                    loading.rel, loading.lines.line((*entry.path, "parameter_values", name)),
                    f"{node.label} exposes no parameter '{name}'",
                    f"its parameters are {', '.join(valid) or 'none'}", node.label))


def _parameters(inner: App, exposes: Any) -> tuple[ParameterDecl, ...]:
    """The parameters the node takes: the inner ones it exposes (all without ``exposes``)."""
    wanted = exposed(exposes, "parameters") if isinstance(exposes, dict) else None
    found: dict[str, ParameterDecl] = {}
    for member in inner.nodes:
        for decl in member.interface.parameters:
            if wanted is None or decl.name in wanted:
                found.setdefault(decl.name, decl)
    return tuple(found.values())


def _member(inner: Node, container: Node, names: Mapping[str, str], ids: Mapping[str, str],
            root: Path | None, folder: str | None) -> Node:
    def store(name: str) -> str:
        return names.get(name, name)

    ports: dict[str, dict[str, str]] = {"r": {}, "w": {}}
    for table in inner.interface.tables:
        ports[table.mode][table.port] = store(inner.store_for(table.port))
    if inner.kind in ("component", "subgraph"):
        ports = {"r": {k: store(v) for k, v in inner.inputs.items()},
                 "w": {k: store(v) for k, v in inner.outputs.items()}}
    rel_file, own_root = inner.rel_file, inner.root
    if own_root is None and root is not None:
        own_root = root
    elif own_root is None and folder not in (None, "", ".") and rel_file is not None:
        rel_file = f"{folder}/{rel_file}"
        own_root = container.root
    raw = dict(inner.raw)
    if inner.kind == "chart" and raw.get("chart_input"):
        raw["chart_input"] = store(str(raw["chart_input"]))
    return replace(
        inner, id=ids[inner.id], title=f"{container.title} / {inner.title}", rel_file=rel_file,
        root=own_root, inputs=ports["r"], outputs=ports["w"],
        webhook_table=store(inner.webhook_table) if inner.webhook_table else None,
        parent=ids[inner.parent] if inner.parent else container.id,
        members=tuple(ids[m] for m in inner.members), raw=raw)
