"""Static discovery of a SQL node's interface from its Jinja template.

A SQL node is a template with ``{{ Table("x") }}`` and ``{{ Parameter("p", type=int) }}``
expressions. The template is parsed with Jinja and its ``Table``/``Parameter`` calls are read
like a Python node's (names must be literals), so the graph is known before anything runs;
calling anything else is a problem. It is then rendered with recording functions (no
database) to find what only rendering shows, such as an undefined name. A SQL node with no
``Table("t", "w")`` writes its SELECT to the port ``output_table``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Final

from patterns.errors import NodeError, Problem
from patterns.graph.interface import DeclarationReader, read_source
from patterns.graph.model import RUNTIME_DEFAULT, NodeInterface, TableDecl
from patterns.graph.sql_template import TEMPLATE_API, Bound, Slots, render, template_calls

OUTPUT_PORT: Final = "output_table"


def discover_sql(path: Path, rel: str) -> tuple[NodeInterface, list[Problem]]:
    """Read the interface of the SQL node at ``path`` (``rel`` names it in problems)."""
    interface, problems = read_sql_interface(path, rel)
    return interface or NodeInterface(), problems


def read_sql_interface(path: Path, rel: str) -> tuple[NodeInterface | None, list[Problem]]:
    """Like :func:`discover_sql`, with None when the file cannot be read."""
    source, problems = read_source(path, rel)
    if source is None:
        return None, problems
    calls, found = template_calls(source, rel)
    problems.extend(found)
    reader = DeclarationReader(rel, _bare_names)
    reader.read_calls(calls)
    problems.extend(reader.problems)
    for decl in reader.parameters.values():
        if decl.default is RUNTIME_DEFAULT:
            problems.append(Problem(rel, decl.line, f"the default of Parameter '{decl.name}' "
                                    f"is not a literal", "write a literal default, such as "
                                    "default=10 or default=\"2024-01-01\"", rel))
    if not problems:
        problems.extend(_render_problems(source, rel))
    tables = dict(reader.tables)
    if not any(t.mode == "w" for t in tables.values()):
        tables[OUTPUT_PORT] = TableDecl(OUTPUT_PORT, "w", line=1)
    interface = NodeInterface(
        tables=tuple(tables.values()),
        parameters=tuple(reader.parameters.values()),
        uses_state=False,
    )
    return interface, problems


def _render_problems(source: str, rel: str) -> list[Problem]:
    """Render with recording functions: a name the template uses but never defines, say."""
    slots = Slots()

    def table(name: str, mode: str = "r", *args: Any, **kwargs: Any) -> str:
        return f'main."{name}"'

    def parameter(name: str, *args: Any, **kwargs: Any) -> Bound:
        return slots.bind(name, kwargs.get("default", args[1] if len(args) > 1 else ""))

    try:
        render(source, rel, table, parameter, slots)
    except NodeError as exc:
        if "not supported between" in str(exc):  # compares a value known only at run time
            return []
        where, _, message = str(exc).partition(": ")
        line = where.rpartition(":")[2]
        return [Problem(rel, int(line) if line.isdigit() else None, message,
                        "fix the template", rel)]
    return []


def _bare_names(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name) and func.id in TEMPLATE_API:
        return func.id
    return None
