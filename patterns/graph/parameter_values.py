"""Check the parameter values of every node: given where required, of the declared type.

Values come from ``parameter_values`` in graph.yml and from overrides (``--param``): a key
``name`` applies to every node declaring that parameter, ``<node id>.name`` to one node.
Overrides win. ``${{ name }}`` and ``${{ connection.name }}`` references are resolved when a
run starts; here only their syntax is checked.

A problem with one node's values (a required parameter without one, a value for a parameter
the node does not declare, a value of the wrong type) is confined to that node: it goes to
:attr:`Node.needs_configuration`, and the rest of the app loads and runs. Only an override
naming no node or no parameter at all, or a bad override value, is an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from patterns.errors import ConfigError, Problem
from patterns.graph.functions import NodeEntry
from patterns.graph.model import Node
from patterns.graph.parameters import convert_parameter, is_reference, looks_like_reference
from patterns.graph.yaml_lines import LineMap

OVERRIDE_FILE: Final = "--param"
_REFERENCE_FIX: Final = (
    "write `${{ name }}` for a secret or `${{ connection.name }}` for a connection"
)


def check_parameters(
    entries: list[NodeEntry], overrides: Mapping[str, str], rel: str, lines: LineMap
) -> tuple[list[Node], list[Problem]]:
    """The nodes with overrides merged into their parameter_values, and the problems found."""
    problems: list[Problem] = []
    ids = {e.node.id for e in entries}
    shared: dict[str, Any] = {}
    per_node: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        head, dot, name = key.partition(".")
        if not dot:
            shared[key] = value
        elif head in ids:
            per_node.setdefault(head, {})[name] = value
        else:
            problems.append(
                Problem(
                    OVERRIDE_FILE,
                    None,
                    f"override {key}=... names node '{head}', which is not a node id",
                    f"node ids are {', '.join(sorted(ids)) or 'none'}; write "
                    "--param NAME=VALUE or --param NODEID.NAME=VALUE",
                )
            )
    nodes: list[Node] = []
    declared_anywhere: set[str] = set()
    for entry in entries:
        node, found = _check_node(entry, shared, per_node.get(entry.node.id, {}), rel, lines)
        nodes.append(node)
        problems.extend(found)
        declared_anywhere.update(p.name for p in node.interface.parameters)
    for name in shared:
        if name not in declared_anywhere:
            close = difflib.get_close_matches(name, sorted(declared_anywhere), n=1)
            fix = (
                f"did you mean '{close[0]}'?"
                if close
                else (f"declared parameters are {', '.join(sorted(declared_anywhere)) or 'none'}")
            )
            problems.append(
                Problem(
                    OVERRIDE_FILE,
                    None,
                    f"override {name}=... names a parameter that no node declares",
                    fix,
                )
            )
    return nodes, problems


def _check_node(
    entry: NodeEntry,
    shared: Mapping[str, Any],
    own: Mapping[str, Any],
    rel: str,
    lines: LineMap,
) -> tuple[Node, list[Problem]]:
    node = entry.node
    problems: list[Problem] = []
    declared = {p.name: p for p in node.interface.parameters}
    checked = entry.discovered and node.kind in ("python", "sql")
    values: dict[str, Any] = dict(node.parameter_values)
    where: dict[str, tuple[str, int | None]] = {
        name: (rel, lines.line((*entry.path, "parameter_values", name))) for name in values
    }
    for name, value in [*((n, v) for n, v in shared.items() if n in declared), *own.items()]:
        values[name] = value
        where[name] = (OVERRIDE_FILE, None)

    def problem(name: str, message: str, fix: str | None) -> None:
        file, line = where.get(name, (rel, node.line))
        problems.append(Problem(file, line, message, fix, node.label))

    for name, raw in values.items():
        decl = declared.get(name)
        if checked and decl is None:
            close = difflib.get_close_matches(name, list(declared), n=1)
            fix = (
                f"did you mean '{close[0]}'?"
                if close
                else (f"its parameters are {', '.join(declared) or 'none'}")
            )
            problem(name, f"node {node.label} declares no parameter '{name}'", fix)
        elif looks_like_reference(raw) and not is_reference(raw):
            problem(name, f"parameter '{name}' has a malformed reference {raw!r}", _REFERENCE_FIX)
        elif decl is not None and not is_reference(raw):
            try:
                convert_parameter(decl, raw, node=node.label)
            except ConfigError as error:
                problem(name, str(error), None)
    for decl in declared.values():
        if decl.required and values.get(decl.name) is None:
            problem(
                decl.name,
                f"node {node.label} needs a value for parameter '{decl.name}' ({decl.type})",
                f"add `parameter_values: {{{decl.name}: ...}}` to the function in graph.yml "
                f"or pass `--param {decl.name}=VALUE`",
            )
    value_lines = {name: line for name, (file, line) in where.items()
                   if file == rel and line is not None}
    # A bad --param is the command line's mistake, made now: an error, not configuration.
    given = [p for p in problems if p.file == OVERRIDE_FILE]
    needs = [p for p in problems if p.file != OVERRIDE_FILE]
    configured = replace(node, parameter_values=values, value_lines=value_lines,
                         needs_configuration=(*node.needs_configuration, *needs))
    return configured, given
