"""SQL node templates: Jinja in a sandbox where ``Table()`` and ``Parameter()`` are the only
callables.

A template is read twice. :func:`template_calls` parses it (no rendering) and returns its
``Table(...)``/``Parameter(...)`` calls as Python ``ast.Call`` nodes, with their lines, for
the same declaration reader as Python nodes; any other call is a problem. :func:`render`
renders it with the functions given: the engine's return a table's SQL name and a parameter
*placeholder* (``$1``), never the parameter's value, so values are bound by the database and
cannot change the SQL. The rendered text comes with the template line of each of its lines,
so errors found in the SQL point at the line the user wrote.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from patterns.errors import NodeError, Problem
from patterns.graph.sql_sandbox import Budget, environment, guard_tree
from patterns.graph.sql_text import shield, unshield

if TYPE_CHECKING:
    from jinja2 import nodes

DIALECTS: Final = ("postgres", "duckdb")
TEMPLATE_API: Final = ("Table", "Parameter")
_DIALECT_LINE: Final = re.compile(r"\A\s*--\s*dialect\s*:\s*([\w-]+)", re.IGNORECASE)
_LINE: Final = ("\ue000", "\ue001")  # marks the template line a rendered line comes from
_SLOT: Final = ("\ue002", "\ue003")  # marks a parameter placeholder while rendering
_MARKS: Final = re.compile("\ue000(\\d+)\ue001|\ue002(\\d+)\ue003")


def dialect_of(source: str, default: str) -> str:
    """The dialect a template or query is written in: a ``-- dialect: duckdb`` first line,
    else ``default`` (``settings.sql_dialect``)."""
    match = _DIALECT_LINE.match(source)
    if match is None:
        return default
    name = match.group(1).lower()
    if name not in DIALECTS:
        raise NodeError(f"line 1 says `-- dialect: {match.group(1)}`, which is not a dialect "
                        f"Patterns translates; write `-- dialect: postgres` or "
                        f"`-- dialect: duckdb`")
    return name


# ---------------------------------------------------------------------- reading
def template_calls(source: str, rel: str) -> tuple[list[ast.Call], list[Problem]]:
    """The template's ``Table``/``Parameter`` calls as Python calls (with their lines), and
    problems: a syntax error, a call of anything else, an unknown dialect."""
    from jinja2 import TemplateSyntaxError, nodes

    problems: list[Problem] = []
    try:
        dialect_of(source, "postgres")
    except NodeError as exc:
        problems.append(Problem(rel, 1, str(exc), None, rel))
    try:
        tree = environment().parse(shield(source), filename=rel)
        found = list(tree.find_all(nodes.Call))
    except TemplateSyntaxError as exc:
        problems.append(Problem(rel, exc.lineno, f"template syntax error: {exc.message}",
                                "fix the Jinja syntax ({{ ... }} and {% ... %})", rel))
        return [], problems
    except (RecursionError, MemoryError):
        problems.append(_too_deep(rel))
        return [], problems
    calls: list[ast.Call] = []
    for order, call in enumerate(found):
        name = _callee(call.node)
        if name in TEMPLATE_API:
            try:
                python = _python(call)
            except RecursionError:
                problems.append(_too_deep(rel))
                continue
            assert isinstance(python, ast.Call)
            python.lineno, python.col_offset = call.lineno, order
            calls.append(ast.fix_missing_locations(python))  # type: ignore[arg-type]
        else:
            problems.append(Problem(
                rel, call.lineno, f"{name}() cannot be called in a SQL template",
                "a template may call only Table(\"name\") and Parameter(\"name\", ...)", rel))
    return calls, problems


def _too_deep(rel: str) -> Problem:
    return Problem(rel, None, "the template is nested too deeply to read",
                   "split the deeply nested expression into smaller parts", rel)


def _callee(node: nodes.Node) -> str:
    from jinja2 import nodes

    if isinstance(node, nodes.Name):
        return str(node.name)
    if isinstance(node, nodes.Getattr):
        return f"{_callee(node.node)}.{node.attr}"
    return "an expression"


def _python(node: nodes.Node) -> ast.expr:
    """A Jinja expression as the Python expression it spells (literals stay literals)."""
    from jinja2 import nodes

    if isinstance(node, nodes.Const):
        return ast.Constant(node.value)
    if isinstance(node, nodes.Name):
        return ast.Name(node.name, ast.Load())
    if isinstance(node, nodes.List):
        return ast.List([_python(i) for i in node.items], ast.Load())
    if isinstance(node, nodes.Tuple):
        return ast.Tuple([_python(i) for i in node.items], ast.Load())
    if isinstance(node, nodes.Dict):
        return ast.Dict([_python(p.key) for p in node.items],
                        [_python(p.value) for p in node.items])
    if isinstance(node, (nodes.Neg, nodes.Pos)):
        op: ast.unaryop = ast.USub() if isinstance(node, nodes.Neg) else ast.UAdd()
        return ast.UnaryOp(op, _python(node.node))
    if isinstance(node, nodes.Getattr):
        return ast.Attribute(_python(node.node), node.attr, ast.Load())
    if isinstance(node, nodes.Call):
        return ast.Call(_python(node.node), [_python(a) for a in node.args],
                        [ast.keyword(k.key, _python(k.value)) for k in node.kwargs])
    return ast.Name("_an_expression_", ast.Load())  # not a literal


# ---------------------------------------------------------------------- rendering
@dataclass(frozen=True)
class Rendered:
    """A rendered template: the SQL, where each line came from, the parameters to bind."""

    text: str
    lines: tuple[int, ...]  # the template line of each rendered line
    values: tuple[Any, ...]  # the value of $1, $2, ...
    names: tuple[str, ...]  # the parameter behind $1, $2, ...
    slots: tuple[tuple[int, int], ...]  # (offset in text, number) of each placeholder

    def template_line(self, line: int) -> int:
        """The template line of rendered line ``line`` (1-based)."""
        return self.lines[min(max(line, 1), len(self.lines)) - 1] if self.lines else line


class Bound:
    """What ``Parameter(...)`` gives a template: it prints as a placeholder that the
    database binds to the value, and behaves as the value in ``{% if %}`` tests."""

    __slots__ = ("_slot", "_value")

    def __init__(self, slot: int, value: Any) -> None:
        self._slot = slot
        self._value = value

    def __str__(self) -> str:
        return f"{_SLOT[0]}{self._slot}{_SLOT[1]}"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return bool(self._value == _plain(other))

    def __ne__(self, other: object) -> bool:
        return bool(self._value != _plain(other))

    def __lt__(self, other: object) -> bool:
        return bool(self._value < _plain(other))

    def __le__(self, other: object) -> bool:
        return bool(self._value <= _plain(other))

    def __gt__(self, other: object) -> bool:
        return bool(self._value > _plain(other))

    def __ge__(self, other: object) -> bool:
        return bool(self._value >= _plain(other))

    def __hash__(self) -> int:
        return hash(self._slot)


def _plain(value: object) -> Any:
    return value._value if isinstance(value, Bound) else value


class Slots:
    """Numbers the parameters a render uses: one placeholder per parameter name."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.values: list[Any] = []

    def bind(self, name: str, value: Any) -> Bound:
        if name not in self.names:
            self.names.append(name)
            self.values.append(value)
        return Bound(self.names.index(name) + 1, value)


def render(source: str, rel: str, table: Callable[..., str],
           parameter: Callable[..., Bound], slots: Slots) -> Rendered:
    """Render ``source`` with these ``Table`` and ``Parameter`` functions; errors are a
    :class:`NodeError` naming ``rel`` and the template line."""
    from jinja2 import TemplateError, TemplateSyntaxError, nodes

    env = environment()
    budget = Budget()
    try:
        tree = env.parse(shield(source), filename=rel)
        every = [tree, *tree.find_all(nodes.Node)]
        for data in every:
            if isinstance(data, nodes.TemplateData):
                data.data = _mark_lines(data.data, data.lineno)
        guard_tree(every)
        code = env.compile(tree, rel, rel)
    except TemplateSyntaxError as exc:
        raise NodeError(f"{rel}:{exc.lineno}: template syntax error: {exc.message}") from None
    except (RecursionError, MemoryError, SyntaxError):
        raise NodeError(f"{rel}: the template is nested too deeply to render; split the "
                        f"deeply nested expression into smaller parts") from None
    template = env.template_class.from_code(env, code, env.make_globals(None))
    api: dict[str, Any] = {"Table": _api(table), "Parameter": _api(parameter),
                           **budget.guards(_mark)}
    try:
        marked = budget.emit(template.generate(api))
    except NodeError as exc:
        raise NodeError(f"{rel}:{_error_line(exc, rel)}: {exc}") from None
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError,
            RecursionError, MemoryError) as exc:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        if isinstance(exc, RecursionError):
            message = "it recurses too deeply"
        raise NodeError(f"{rel}:{_error_line(exc, rel)}: the template cannot be rendered: "
                        f"{message}") from None
    return _unmark(marked, slots)


def _api(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return _mark(call)


def _mark(function: Callable[..., Any]) -> Callable[..., Any]:
    """Let the sandbox call ``function``."""
    function._patterns_template_api = True  # type: ignore[attr-defined]
    return function


def _mark_lines(data: str, first_line: int) -> str:
    parts = data.split("\n")
    return "\n".join(part if n == 0 else f"{_LINE[0]}{first_line + n}{_LINE[1]}{part}"
                     for n, part in enumerate(parts))


def _unmark(marked: str, slots: Slots) -> Rendered:
    """The rendered text without its marks: placeholders become ``$n``, line marks the map
    from rendered lines to template lines."""
    text: list[str] = []
    size = 0
    lines: list[int] = []
    found: list[tuple[int, int]] = []
    for raw in marked.split("\n"):
        match = _MARKS.match(raw)
        line = int(match.group(1)) if match and match.group(1) else (lines[-1] + 1 if lines
                                                                     else 1)
        lines.append(line)
        pieces: list[str] = []
        last = 0
        for mark in _MARKS.finditer(raw):
            pieces.append(raw[last:mark.start()])
            if mark.group(2):
                placeholder = f"${mark.group(2)}"
                found.append((size + sum(map(len, pieces)), int(mark.group(2))))
                pieces.append(placeholder)
            last = mark.end()
        pieces.append(raw[last:])
        line_text = unshield("".join(pieces))
        text.append(line_text)
        size += len(line_text) + 1
    return Rendered("\n".join(text), tuple(lines), tuple(slots.values), tuple(slots.names),
                    tuple(found))


def _error_line(exc: BaseException, rel: str) -> int | str:
    """The template line of a render error (Jinja puts it in the traceback)."""
    line: int | str = "?"
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == rel:
            line = tb.tb_lineno
        tb = tb.tb_next
    return getattr(exc, "lineno", None) or line
