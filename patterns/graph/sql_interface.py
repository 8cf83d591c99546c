"""Static discovery of a SQL node's interface from its Jinja template.

A SQL node is a template with ``{{ Table("x") }}`` and ``{{ Parameter("p", type=int) }}``
expressions. Each ``{{ ... }}`` (and each ``{% set v = ... %}``) is parsed as a Python
expression, never rendered, so the graph is known before anything runs. A SQL node with no
``Table("t", "w")`` writes its SELECT to the port ``output_table``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Final

from patterns.errors import Problem
from patterns.graph.interface import API_NAMES, DeclarationReader, read_source
from patterns.graph.model import NodeInterface, TableDecl

OUTPUT_PORT: Final = "output_table"
_EXPRESSION: Final = re.compile(r"\{\{(.*?)\}\}|\{%-?\s*set\s+[^=%]+=(.*?)-?%\}", re.DOTALL)
_JINJA_LITERALS: Final = re.compile(r"\b(true|false|none)\b")


def discover_sql(path: Path, rel: str) -> tuple[NodeInterface, list[Problem]]:
    """Read the interface of the SQL node at ``path`` (``rel`` names it in problems)."""
    interface, problems = read_sql_interface(path, rel)
    return interface or NodeInterface(), problems


def read_sql_interface(path: Path, rel: str) -> tuple[NodeInterface | None, list[Problem]]:
    """Like :func:`discover_sql`, with None when the file cannot be read."""
    source, problems = read_source(path, rel)
    if source is None:
        return None, problems
    calls: list[ast.Call] = []
    for match in _EXPRESSION.finditer(source):
        text = match.group(1) if match.group(1) is not None else match.group(2)
        start = match.start(1) if match.group(1) is not None else match.start(2)
        line = source.count("\n", 0, start)
        expression = _JINJA_LITERALS.sub(lambda m: m.group(1).capitalize(), text.strip())
        try:
            tree = ast.parse(expression, mode="eval")
        except SyntaxError:
            if any(name in text for name in API_NAMES):
                problems.append(
                    Problem(
                        rel,
                        line + 1,
                        f"cannot read template expression {{{{{text}}}}}",
                        'write declarations as {{ Table("name") }} or '
                        '{{ Parameter("name", type=int, default=1) }}',
                        rel,
                    )
                )
            continue
        ast.increment_lineno(tree, line)
        calls.extend(n for n in ast.walk(tree) if isinstance(n, ast.Call))
    reader = DeclarationReader(rel, _bare_names)
    reader.read_calls(calls)
    problems.extend(reader.problems)
    tables = dict(reader.tables)
    if not any(t.mode == "w" for t in tables.values()):
        tables[OUTPUT_PORT] = TableDecl(OUTPUT_PORT, "w", line=1)
    interface = NodeInterface(
        tables=tuple(tables.values()),
        parameters=tuple(reader.parameters.values()),
        uses_state=reader.uses_state,
    )
    return interface, problems


def _bare_names(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name) and func.id in API_NAMES:
        return func.id
    return None
