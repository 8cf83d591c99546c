"""The Jinja sandbox SQL templates render in, with budgets on size, loops and time.

Jinja's :class:`~jinja2.sandbox.SandboxedEnvironment` keeps a template away from Python's
internals; on top of it a template here may call only ``Table()`` and ``Parameter()``, and
one render is bounded, so that a hostile or mistaken template is refused in well under a
second instead of taking the process's memory or CPU:

- ``*``, ``+``, ``**``, ``%`` and ``~`` are checked *before* they run: no string or list
  past :data:`MAX_VALUE_CHARS`, no integer past :data:`MAX_INT_BITS` bits;
- every ``{% for %}`` goes through a guard counting iterations (:data:`MAX_LOOP_ITERATIONS`
  in one render) and checking the clock (:data:`MAX_RENDER_SECONDS`);
- the output is counted as it is produced (:data:`MAX_OUTPUT_CHARS`);
- only the filters a SQL template needs are there (:data:`FILTERS`), those that can grow a
  value checked like the operators.

Anything past a budget is a :class:`~jinja2.exceptions.SecurityError` naming the budget,
which :func:`patterns.graph.sql_template.render` turns into a NodeError at the template line.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import SandboxedEnvironment

#: Longest string or list a template may build (characters or items).
MAX_VALUE_CHARS: Final = 10_000_000
#: Longest rendered SQL (characters).
MAX_OUTPUT_CHARS: Final = 10_000_000
#: Largest integer a template may compute, in bits.
MAX_INT_BITS: Final = 100_000
#: Most ``{% for %}`` iterations in one render, all loops together.
MAX_LOOP_ITERATIONS: Final = 1_000_000
#: Longest a render may take.
MAX_RENDER_SECONDS: Final = 5.0
#: The filters a SQL template may use (Jinja's, without those that only pad or lay out text).
FILTERS: Final = frozenset({
    "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first",
    "float", "groupby", "int", "items", "join", "last", "length", "list", "lower", "map", "max",
    "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select",
    "selectattr", "sort", "string", "sum", "title", "tojson", "trim", "truncate", "unique",
    "upper", "urlencode", "wordcount",
})
LOOP_GUARD: Final = "_patterns_loop"
CONCAT_GUARD: Final = "_patterns_concat"
_WIDTH: Final = re.compile(r"%[-#0 +]*(\*|\d+)|\{[^{}]*:[^{}]*?(\d+)[^{}]*\}")


class Budget:
    """What one render has used: loop iterations, output, time."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + MAX_RENDER_SECONDS
        self.iterations = 0
        self.output = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            _refuse(f"the template took over {MAX_RENDER_SECONDS:g} s to render")

    def loop(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.iterations += 1
            if self.iterations > MAX_LOOP_ITERATIONS:
                _refuse(f"the template's loops ran over {MAX_LOOP_ITERATIONS:,} times")
            self.tick()
            yield item

    def concat(self, *parts: Any) -> str:
        texts = [str(part) for part in parts]
        _check_size(sum(map(len, texts)), "a ~ concatenation")
        return "".join(texts)

    def emit(self, chunks: Iterable[str]) -> str:
        """The output of a render, refused once it grows past the limit or the time."""
        out: list[str] = []
        for chunk in chunks:
            self.output += len(chunk)
            if self.output > MAX_OUTPUT_CHARS:
                _refuse(f"the template renders over {MAX_OUTPUT_CHARS:,} characters")
            self.tick()
            out.append(chunk)
        return "".join(out)

    def guards(self, mark: Callable[[Callable[..., Any]], Callable[..., Any]]) -> dict[str, Any]:
        """The functions :func:`guard_tree` makes the template call, marked callable."""
        def loop(iterable: Iterable[Any]) -> Iterator[Any]:
            return self.loop(iterable)

        def concat(*parts: Any) -> str:
            return self.concat(*parts)

        return {LOOP_GUARD: mark(loop), CONCAT_GUARD: mark(concat)}


def guard_tree(every: list[nodes.Node]) -> None:
    """Route every ``{% for %}`` through the loop guard and every ``~`` through the concat
    guard, in place (``every`` node of the template, before compiling)."""
    from jinja2 import nodes

    calls: dict[int, nodes.Call] = {}

    def guarded(node: Any) -> Any:
        if not isinstance(node, nodes.Concat):
            return node
        if id(node) not in calls:  # its parts stay the same list: inner ~ are replaced too
            calls[id(node)] = nodes.Call(nodes.Name(CONCAT_GUARD, "load"), node.nodes, [],
                                         None, None, lineno=node.lineno)
        return calls[id(node)]

    concats = [node for node in every if isinstance(node, nodes.Concat)]
    for node in every if concats else ():
        for name in node.fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                value[:] = [guarded(item) for item in value]
            elif isinstance(value, nodes.Concat):
                setattr(node, name, guarded(value))
    for node in every:
        if isinstance(node, nodes.For):
            node.iter = nodes.Call(nodes.Name(LOOP_GUARD, "load"), [node.iter], [], None,
                                   None, lineno=node.lineno)


def _refuse(message: str) -> None:
    from jinja2.exceptions import SecurityError

    raise SecurityError(f"{message}; the limits are in docs/graph-yml.md (\"Limits\")")


def _check_size(size: int, what: str) -> None:
    if size > MAX_VALUE_CHARS:
        _refuse(f"{what} would make a value of {size:,} characters or items, over the "
                f"limit of {MAX_VALUE_CHARS:,}")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    sized = (str, list, tuple, bytes)
    if operator == "*":
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, sized) and isinstance(count, int):
                _check_size(len(seq) * max(count, 0), f"{operator!r} of a {type(seq).__name__}")
        if isinstance(left, int) and isinstance(right, int):
            _check_bits(left.bit_length() + right.bit_length())
    elif operator == "+" and isinstance(left, sized) and isinstance(right, sized):
        _check_size(len(left) + len(right), "'+'")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        _check_bits(max(left.bit_length() - 1, 1) * right)
    elif operator == "%" and isinstance(left, str):
        _check_format(left)


def _check_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        _refuse(f"the template computes an integer of about {bits:,} bits, over the limit of "
                f"{MAX_INT_BITS:,}")


def _check_format(text: str) -> None:
    for match in _WIDTH.finditer(text):
        width = match.group(1) or match.group(2)
        if width == "*" or int(width) > MAX_VALUE_CHARS:
            _refuse(f"the format {match.group(0)!r} pads to a width over the limit of "
                    f"{MAX_VALUE_CHARS:,} (or a width given as *)")


def _guarded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    value_at = 1 if hasattr(function, "jinja_pass_arg") else 0

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        options = [*args[value_at + 1:], *kwargs.values()]
        if any(isinstance(o, int) and abs(o) > MAX_VALUE_CHARS for o in options):
            _refuse(f"the {name} filter was given a number over the limit of "
                    f"{MAX_VALUE_CHARS:,}")
        value = args[value_at] if len(args) > value_at else None
        if name == "join" and isinstance(value, (list, tuple, str)) and options:
            _check_size(len(value) * len(str(options[0])), "the join filter")
        if name == "replace" and isinstance(value, str) and len(options) >= 2:
            old, new = str(options[0]), str(options[1])
            grows = (value.count(old) if old else len(value) + 1) * len(new)
            _check_size(len(value) + grows, "the replace filter")
        if name == "sum" and not all(isinstance(o, (int, float, str)) for o in options):
            _refuse("the sum filter adds numbers only (start= must be a number)")
        result = function(*args, **kwargs)
        if isinstance(result, (str, list, tuple)):
            _check_size(len(result), f"the {name} filter")
        return result

    return guarded


@functools.cache
def environment() -> SandboxedEnvironment:
    """The one sandbox every SQL template is parsed and rendered in."""
    from jinja2 import StrictUndefined
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import SandboxedEnvironment

    class TemplateSandbox(SandboxedEnvironment):
        """Only marked functions (``Table``, ``Parameter``, the guards) may be called;
        operators that can grow a value are checked first."""

        intercepted_binops = frozenset({"*", "+", "**", "%"})

        def call(__self, __context: Any, __obj: Any, *args: Any,
                 **kwargs: Any) -> Any:
            if getattr(__obj, "_patterns_template_api", False):
                return __context.call(__obj, *args, **kwargs)
            name = getattr(__obj, "__name__", type(__obj).__name__)
            raise SecurityError(f"{name}() cannot be called in a SQL template; a template may "
                                f"call only Table(\"name\") and Parameter(\"name\", ...)")

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _check_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

    env = TemplateSandbox(undefined=StrictUndefined, autoescape=False,
                          keep_trailing_newline=True)
    env.filters = {name: _guarded_filter(name, f) for name, f in env.filters.items()
                   if name in FILTERS}
    return env
