"""Checks across nodes: unique ids and files, and every port bound to a store that exists.

A port with no ``inputs``/``outputs`` mapping binds to the store of the same name.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection

from patterns.errors import Problem
from patterns.graph.functions import NodeEntry
from patterns.graph.yaml_lines import LineMap


def check_duplicates(entries: list[NodeEntry], rel: str, lines: LineMap) -> list[Problem]:
    """The same node_file or webhook table listed twice, and ids used twice."""
    problems: list[Problem] = []
    first_source: dict[tuple[str, str], NodeEntry] = {}
    reported: set[str] = set()
    for entry in entries:
        node = entry.node
        if node.rel_file is not None:
            source = ("node_file", node.rel_file)
        elif node.webhook_table is not None:
            source = ("webhook table", node.webhook_table)
        else:
            continue
        if source in first_source:
            first = first_source[source].node
            what = f"{source[0]} '{source[1]}'"
            problems.append(
                Problem(
                    rel,
                    node.line,
                    f"{what} is listed twice in functions (first at line {first.line})",
                    "remove one of the two entries",
                    node.label,
                )
            )
            reported.add(node.id)
        else:
            first_source[source] = entry
    first_id: dict[str, NodeEntry] = {}
    for entry in entries:
        node = entry.node
        if node.id in first_id and node.id not in reported:
            first = first_id[node.id].node
            problems.append(
                Problem(
                    rel,
                    lines.line((*entry.path, "id")) or node.line,
                    f"duplicate node id '{node.id}' (also used by {first.label} "
                    f"at line {first.line})",
                    "give each function its own id",
                    node.label,
                )
            )
        first_id.setdefault(node.id, entry)
    return problems


def check_bindings(
    entries: list[NodeEntry], stores: Collection[str], rel: str, lines: LineMap
) -> list[Problem]:
    """Every table a node reads or writes must be a store; mapped ports must be declared."""
    problems: list[Problem] = []
    for entry in entries:
        problems.extend(_node_bindings(entry, stores, rel, lines))
        if entry.node.kind == "python" and entry.discovered:
            problems.extend(_undeclared_ports(entry, rel, lines))
    return problems


def _node_bindings(
    entry: NodeEntry, stores: Collection[str], rel: str, lines: LineMap
) -> list[Problem]:
    problems: list[Problem] = []
    node = entry.node
    path = entry.path

    def missing(store: str, verb: str, file: str, line: int | None) -> None:
        close = difflib.get_close_matches(store, list(stores), n=1)
        fix = f"add `- table: {store}` under `stores:`"
        if close:
            fix += f" (or did you mean '{close[0]}'?)"
        message = f"node {node.label} {verb} table '{store}', which is not a store"
        problems.append(Problem(file, line, message, fix, node.label))

    if node.kind in ("python", "sql"):
        for table in node.interface.tables:
            store = node.store_for(table.port)
            if store in stores or not table.required:
                continue
            verb = "reads" if table.mode == "r" else "writes"
            mapping = (
                "inputs"
                if table.port in node.inputs
                else "outputs"
                if table.port in node.outputs
                else None
            )
            if mapping is not None:
                missing(store, verb, rel, lines.line((*path, mapping, table.port)))
            else:
                missing(store, verb, node.rel_file or rel, table.line)
    elif node.kind == "webhook" and node.webhook_table:
        if node.webhook_table not in stores:
            missing(node.webhook_table, "writes", rel, lines.line((*path, "webhook")))
    elif node.kind == "chart":
        for store in node.reads():
            if store not in stores:
                missing(store, "reads", rel, lines.line((*path, "chart_input")))
    else:
        for mapping, verb in (("inputs", "reads"), ("outputs", "writes")):
            ports = node.inputs if mapping == "inputs" else node.outputs
            for port, store in ports.items():
                if store not in stores:
                    missing(store, verb, rel, lines.line((*path, mapping, port)))
    return problems


def _undeclared_ports(entry: NodeEntry, rel: str, lines: LineMap) -> list[Problem]:
    node = entry.node
    declared = [t.port for t in node.interface.tables]
    problems: list[Problem] = []
    for mapping, ports in (("inputs", node.inputs), ("outputs", node.outputs)):
        for port in ports:
            if port in declared:
                continue
            close = difflib.get_close_matches(port, declared, n=1)
            if close:
                fix = f"did you mean '{close[0]}'?"
            elif declared:
                fix = f"its tables are {', '.join(declared)}"
            else:
                fix = f'declare it in {node.rel_file} with Table("{port}")'
            problems.append(
                Problem(
                    rel,
                    lines.line((*entry.path, mapping, port)),
                    f"`{mapping}` maps port '{port}', but {node.rel_file} declares no "
                    f"Table('{port}')",
                    fix,
                    node.label,
                )
            )
    return problems
