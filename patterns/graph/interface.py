"""Static discovery of a node's interface: the Tables, State and Parameters it declares.

The node file is parsed, never imported or run, so the graph is known before anything runs.
That is why table and parameter names must be literal strings.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from patterns.errors import ConfigError, Problem
from patterns.graph.limits import MAX_NODE_FILE_BYTES, read_text_limited
from patterns.graph.model import (
    MISSING,
    PARAMETER_TYPES,
    RUNTIME_DEFAULT,
    NodeInterface,
    ParameterDecl,
    TableDecl,
)
from patterns.graph.parameters import EXPECTED, convert_parameter
from patterns.graph.python_ast import parse_python

API_NAMES: Final = frozenset({"Table", "State", "Parameter", "Connection"})
_API_MODULES: Final = frozenset({"patterns", "patterns.sdk"})
_TYPE_NAMES: Final = {name: name for name in PARAMETER_TYPES if name != "connection"}
_TYPE_NAMES.update({"List": "list", "string": "str", "integer": "int", "boolean": "bool"})

#: Given a call's function expression, the API name it refers to (or None).
Resolver = Callable[[ast.expr], str | None]


def discover_python(path: Path, rel: str) -> tuple[NodeInterface, list[Problem]]:
    """Read the interface of the Python node at ``path`` (``rel`` names it in problems)."""
    interface, problems = read_python_interface(path, rel)
    return interface or NodeInterface(), problems


def read_python_interface(path: Path, rel: str) -> tuple[NodeInterface | None, list[Problem]]:
    """Like :func:`discover_python`, with None when the file cannot be read or parsed."""
    source, problems = read_source(path, rel)
    if source is None:
        return None, problems
    try:
        tree = parse_python(source, filename=rel)
    except SyntaxError as error:
        problem = Problem(
            rel, error.lineno, f"syntax error: {error.msg}", "fix the Python syntax", rel
        )
        return None, [problem]
    except (RecursionError, MemoryError):  # nesting past what Python's parser can hold
        return None, [_too_deep(rel)]
    reader = DeclarationReader(rel, _python_resolver(tree))
    try:
        reader.read_calls(node for node in ast.walk(tree) if isinstance(node, ast.Call))
    except (RecursionError, MemoryError):
        return None, [_too_deep(rel)]
    return reader.interface(), reader.problems


def _too_deep(rel: str) -> Problem:
    return Problem(rel, None, "the code is nested too deeply for Patterns to read",
                   "split the deeply nested expression into smaller parts", rel)


def read_source(path: Path, rel: str) -> tuple[str | None, list[Problem]]:
    """The text of a node file, or None and a problem."""
    return read_text_limited(path, rel, MAX_NODE_FILE_BYTES, "the node file", rel)


def _python_resolver(tree: ast.Module) -> Resolver:
    """Resolve names bound by ``from patterns import Table [as T]``, ``import patterns``..."""
    names: dict[str, str] = {}
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if node.module in _API_MODULES and alias.name == "*":
                    names.update({name: name for name in API_NAMES})
                elif node.module in _API_MODULES and alias.name in API_NAMES:
                    names[alias.asname or alias.name] = alias.name
                elif f"{node.module}.{alias.name}" in _API_MODULES:
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in _API_MODULES:
                    local = alias.asname or alias.name.split(".")[0]
                    modules[local] = alias.name if alias.asname else local

    def resolve(func: ast.expr) -> str | None:
        if isinstance(func, ast.Name):
            return names.get(func.id)
        if isinstance(func, ast.Attribute) and func.attr in API_NAMES:
            dotted = _dotted(func.value)
            if dotted is None:
                return None
            head, _, rest = dotted.partition(".")
            if head in modules and ".".join(filter(None, [modules[head], rest])) in _API_MODULES:
                return func.attr
        return None

    return resolve


def _dotted(expr: ast.expr) -> str | None:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        head = _dotted(expr.value)
        return f"{head}.{expr.attr}" if head else None
    return None


class DeclarationReader:
    """Turns Table/State/Parameter calls into declarations, collecting problems."""

    def __init__(self, rel: str, resolve: Resolver) -> None:
        self.rel = rel
        self.resolve = resolve
        self.tables: dict[str, TableDecl] = {}
        self.parameters: dict[str, ParameterDecl] = {}
        self.uses_state = False
        self.problems: list[Problem] = []

    def interface(self) -> NodeInterface:
        return NodeInterface(
            tables=tuple(self.tables.values()),
            parameters=tuple(self.parameters.values()),
            uses_state=self.uses_state,
        )

    def read_calls(self, calls: Iterable[ast.Call]) -> None:
        for call in sorted(calls, key=lambda c: (c.lineno, c.col_offset)):
            api = self.resolve(call.func)
            if api == "Table":
                self._table(call)
            elif api == "Parameter":
                self._parameter(call)
            elif api == "State":
                self.uses_state = True

    def _problem(self, call: ast.AST, message: str, fix: str) -> None:
        line = getattr(call, "lineno", None)
        self.problems.append(Problem(self.rel, line, message, fix, self.rel))

    def _table(self, call: ast.Call) -> None:
        line = call.lineno
        name = _argument(call, 0, "name")
        if not _is_str(name):
            self._problem(
                call,
                "Table name must be a literal string so the graph can be known before running",
                'write the name in quotes, e.g. Table("messages")',
            )
            return
        mode_expr = _argument(call, 1, "mode")
        mode = "r" if mode_expr is None else _literal(mode_expr, None)
        if mode not in ("r", "w"):
            shown = ast.unparse(mode_expr) if mode_expr is not None else ""
            self._problem(
                call,
                f'Table \'{_str(name)}\' has mode {shown}; the mode must be "r" or "w"',
                f'write Table("{_str(name)}", "w") to write it or leave the mode out to read it',
            )
            return
        required = _literal(_argument(call, 4, "required"), True)
        description = _literal(_argument(call, 2, "description"), None)
        decl = TableDecl(
            port=_str(name),
            mode="w" if mode == "w" else "r",
            line=line,
            required=required is not False,
            description=description if isinstance(description, str) else None,
        )
        self._merge_table(decl)

    def _merge_table(self, decl: TableDecl) -> None:
        old = self.tables.get(decl.port)
        if old is None:
            self.tables[decl.port] = decl
            return
        self.tables[decl.port] = TableDecl(
            port=old.port,
            mode="w" if "w" in (old.mode, decl.mode) else "r",
            line=old.line,
            required=old.required or decl.required,
            description=old.description or decl.description,
        )

    def _parameter(self, call: ast.Call) -> None:
        line = call.lineno
        name_expr = _argument(call, 0, "name")
        if not _is_str(name_expr):
            self._problem(
                call,
                "Parameter name must be a literal string so the graph can be known before running",
                'write the name in quotes, e.g. Parameter("limit", type=int)',
            )
            return
        name = _str(name_expr)
        type_name, kind = self._parameter_type(call, name)
        if type_name is None:
            return
        description = _literal(_parameter_argument(call, "description"), None)
        decl = ParameterDecl(
            name=name,
            type=type_name,
            default=MISSING,
            line=line,
            description=description if isinstance(description, str) else None,
            connection_kind=kind,
        )
        default_expr = _parameter_argument(call, "default")
        if default_expr is not None:
            decl = self._with_default(call, decl, default_expr)
        self.parameters.setdefault(name, decl)

    def _parameter_type(self, call: ast.Call, name: str) -> tuple[str | None, str | None]:
        expr = _parameter_argument(call, "type")
        if expr is None:
            return "str", None
        if isinstance(expr, ast.Call) and self.resolve(expr.func) == "Connection":
            kind = _literal(_argument(expr, 0, "kind"), None)
            return "connection", kind if isinstance(kind, str) else None
        if isinstance(expr, ast.Subscript):
            expr = expr.value
        key: Any = None
        if isinstance(expr, ast.Name):
            key = expr.id
        elif isinstance(expr, ast.Attribute):
            key = expr.attr
        elif isinstance(expr, ast.Constant):
            key = expr.value
        if isinstance(key, str) and key in _TYPE_NAMES:
            return _TYPE_NAMES[key], None
        self._problem(
            call,
            f"Parameter '{name}' has type {ast.unparse(expr)}, which is not a parameter type",
            'use one of str, int, float, bool, datetime, date, list or Connection("kind")',
        )
        return None, None

    def _with_default(self, call: ast.Call, decl: ParameterDecl, expr: ast.expr) -> ParameterDecl:
        try:
            value = ast.literal_eval(expr)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return _replace_default(decl, RUNTIME_DEFAULT)
        if value is None:
            return _replace_default(decl, None)
        try:
            return _replace_default(decl, convert_parameter(decl, value, node=self.rel))
        except ConfigError:
            self._problem(
                call,
                f"default {value!r} of Parameter '{decl.name}' is not {EXPECTED[decl.type]}",
                "change the default or the type",
            )
            return _replace_default(decl, RUNTIME_DEFAULT)


def _replace_default(decl: ParameterDecl, default: Any) -> ParameterDecl:
    return ParameterDecl(
        decl.name, decl.type, default, decl.line, decl.description, decl.connection_kind
    )


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    if position < len(call.args) and not any(
        isinstance(a, ast.Starred) for a in call.args[: position + 1]
    ):
        return call.args[position]
    return None


def _parameter_argument(call: ast.Call, keyword: str) -> ast.expr | None:
    """An argument of ``Parameter(...)``: in the original API's order ``(name, description,
    type, default)`` when the second is a string (or None) that is not a type's name, else in the older order ``(name,
    type, default, description)``."""
    second = call.args[1] if len(call.args) > 1 else None
    original = second is None or (
        isinstance(second, ast.Constant) and (second.value is None or (
            isinstance(second.value, str) and second.value not in _TYPE_NAMES)))
    order = ("description", "type", "default") if original else ("type", "default", "description")
    return _argument(call, 1 + order.index(keyword), keyword)


def _literal(expr: ast.expr | None, default: Any) -> Any:
    if expr is None:
        return default
    try:
        return ast.literal_eval(expr)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return default


def _is_str(expr: ast.expr | None) -> bool:
    return isinstance(expr, ast.Constant) and isinstance(expr.value, str)


def _str(expr: ast.expr | None) -> str:
    assert isinstance(expr, ast.Constant) and isinstance(expr.value, str)
    return expr.value
