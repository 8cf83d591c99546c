"""What a node needs from outside the app before it can run: its secrets and storages.

Loading an app (:mod:`patterns.graph.loader`) marks the problems it can see in the files;
this adds those only the machine can answer: a ``${{ secret }}`` or
``${{ connection.name }}`` that is not set, and a storage whose connection is missing or
points nowhere. Either marks the nodes concerned as needing configuration (with the
graph.yml line and the fix): they do not run, the rest of the app does.
"""

from __future__ import annotations

from dataclasses import replace

from patterns.engine.secrets import SecretStore
from patterns.engine.storages import resolve
from patterns.errors import ConfigError, Problem, did_you_mean
from patterns.graph.model import App, Node
from patterns.graph.parameters import is_reference, parse_reference

GRAPH_FILE = "graph.yml"


def check_configuration(app: App, secrets: SecretStore) -> App:
    """``app`` with every node's missing secrets and storages added to its
    :attr:`~patterns.graph.model.Node.needs_configuration` (idempotent)."""
    rel = app.graph_file.name or GRAPH_FILE
    storage_problems: dict[str, tuple[int, str]] = {}
    for storage in app.storages:
        try:
            resolve(storage, secrets, app.root)
        except ConfigError as exc:
            storage_problems[storage.name] = (storage.line, str(exc))
    external = {s.name: s for s in app.stores if s.storage is not None}
    nodes = []
    for node in app.nodes:
        found = [*_secrets(node, secrets, rel)]
        for store in node.reads():
            decl = external.get(store)
            if decl is None or decl.storage not in storage_problems:
                continue
            line, fix = storage_problems[str(decl.storage)]  # where its connection is given
            found.append(Problem(rel, line or None,
                                 f"node {node.label} reads table '{store}' of storage "
                                 f"'{decl.storage}', which cannot be reached", fix, node.label))
        merged = tuple(dict.fromkeys((*node.needs_configuration, *found)))
        nodes.append(replace(node, needs_configuration=merged) if found else node)
    return replace(app, nodes=tuple(nodes))


def _secrets(node: Node, secrets: SecretStore, rel: str) -> list[Problem]:
    declared = {p.name for p in node.interface.parameters}
    problems: list[Problem] = []
    for name, raw in node.parameter_values.items():
        if not is_reference(raw) or (declared and name not in declared):
            continue
        kind, ref = parse_reference(raw)
        key = f"connection.{ref}" if kind == "connection" else ref
        if secrets.get(key) is not None:
            continue
        example = "'{\"api_key\": \"...\"}'" if kind == "connection" else "VALUE"
        hint = did_you_mean(key, secrets.names())
        fix = f"set it with `patterns create secret {key} {example}`"
        if hint:
            fix = f"correct the name in graph.yml{hint}, or {fix}"
        problems.append(Problem(
            rel, node.value_lines.get(name) or node.line,
            f"node {node.label}: parameter '{name}' refers to {kind} '{ref}', which is not set",
            fix, node.label))
    return problems
