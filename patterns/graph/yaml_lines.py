"""Read YAML into plain Python values while keeping the line of every key and list item.

PyYAML composes the document into a node tree (each node knows its position), then builds
the values from that same tree. Walking the tree gives a map from a value's path, e.g.
``("functions", 0, "trigger")``, to its 1-based line, so every problem can point at a line.

A hostile document costs bounded time and memory: aliases, expanded values and nesting depth
have budgets (:mod:`patterns.graph.limits`), a tag whose value does not convert (``!!int abc``)
and a character YAML forbids (a NUL byte) are problems at their line, like syntax errors.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import yaml

from patterns.errors import Problem
from patterns.graph.limits import MAX_YAML_ALIASES, MAX_YAML_DEPTH, MAX_YAML_NODES

KeyPath = tuple[Hashable, ...]


@dataclass
class LineMap:
    """The 1-based line of each path in a YAML document."""

    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return None


@dataclass
class YamlDocument:
    data: Any
    lines: LineMap
    problems: list[Problem]


def read_yaml(text: str, rel: str) -> YamlDocument:
    """Parse ``text``; syntax errors, duplicate keys and values past the limits come back as
    problems of ``rel``."""
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)
        node = loader.get_single_node()
        lines = LineMap()
        problems: list[Problem] = []
        if node is not None:
            _check_expansion(node)
            _walk(loader, node, (), lines, problems, rel, set())
        data = loader.construct_document(node) if node is not None else None
        return YamlDocument(data, lines, problems)
    except _OverBudget as error:
        problem = Problem(rel, error.line, error.message, error.fix)
        return YamlDocument(None, LineMap(), [problem])
    except yaml.constructor.ConstructorError as error:
        mark = error.problem_mark or error.context_mark
        problem = Problem(
            rel,
            mark.line + 1 if mark is not None else None,
            f"YAML value refused: {' '.join(filter(None, [error.context, error.problem]))}",
            "write a plain value; graph.yml allows only the standard tags (!!str, !!int, "
            "!!float, !!bool, !!null...) on values they fit",
        )
        return YamlDocument(None, LineMap(), [problem])
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        detail = " ".join(filter(None, [error.context, error.problem]))
        problem = Problem(
            rel,
            line,
            f"YAML syntax error: {detail}",
            "fix the YAML (check the indentation and quote values containing ': ' or '#')",
        )
        return YamlDocument(None, LineMap(), [problem])
    except yaml.reader.ReaderError as error:
        line = text[: max(error.position, 0)].count("\n") + 1
        code = error.character if isinstance(error.character, int) else None
        problem = Problem(
            rel,
            line,
            f"YAML cannot hold the character #x{code:04x}" if code is not None
            else f"YAML error: {error.reason}",
            "remove it, or write it as an escape (\\xNN) inside a double-quoted string",
        )
        return YamlDocument(None, LineMap(), [problem])
    except yaml.YAMLError as error:
        return YamlDocument(None, LineMap(), [Problem(rel, None, f"YAML error: {error}")])
    finally:
        if loader is not None:
            loader.dispose()


class _OverBudget(Exception):
    def __init__(self, line: int | None, message: str, fix: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.fix = fix


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with budgets on aliases and nesting while composing, and value
    conversion errors (``!!int abc``) raised as errors at the value's line."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                line = self._line()
                raise _OverBudget(line, f"more than {MAX_YAML_ALIASES} YAML aliases (*name)",
                                  "write the values out instead of repeating them by alias")
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                line = self._line()
                raise _OverBudget(line, f"values nested more than {MAX_YAML_DEPTH} deep",
                                  "flatten the structure")
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def _line(self) -> int:
        return int(self.peek_event().start_mark.line) + 1  # type: ignore[no-untyped-call]

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, ArithmeticError, LookupError) as error:
            tag = str(node.tag).rpartition(":")[2]
            value = node.value if isinstance(node, yaml.ScalarNode) else node.tag
            raise yaml.constructor.ConstructorError(
                None, None, f"{str(value)[:80]!r} is not a valid !!{tag} ({error})",
                node.start_mark) from None


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand past the budgets (the "billion laughs"), or
    that contains itself: the walk, the conversion and validation all follow aliases."""
    sizes: dict[int, tuple[int, int]] = {}  # node id -> (values, depth), aliases expanded
    active: set[int] = set()

    def measure(node: yaml.Node) -> tuple[int, int]:
        known = sizes.get(id(node))
        if known is not None:
            return known
        line = node.start_mark.line + 1
        if id(node) in active:
            raise _OverBudget(line, "a YAML alias refers to a value that contains it",
                              "remove the alias: graph.yml values cannot contain themselves")
        active.add(id(node))
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        count, depth = 1, 1
        for child in children:
            child_count, child_depth = measure(child)
            count += child_count
            depth = max(depth, child_depth + 1)
            if count > MAX_YAML_NODES:
                raise _OverBudget(line, f"graph.yml expands to more than {MAX_YAML_NODES:,} "
                                  "values (counting what its aliases repeat)",
                                  "write it with fewer aliases or fewer values")
            if depth > MAX_YAML_DEPTH:
                raise _OverBudget(line, f"values nested more than {MAX_YAML_DEPTH} deep "
                                  "(counting what aliases repeat)", "flatten the structure")
        active.discard(id(node))
        sizes[id(node)] = (count, depth)
        return count, depth

    measure(root)


def _walk(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: KeyPath,
    lines: LineMap,
    problems: list[Problem],
    rel: str,
    active: set[int],
) -> None:
    if id(node) in active:
        return
    active.add(id(node))
    lines.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = _key(loader, key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    Problem(rel, line, f"duplicate key '{key}'", "keep only one of them")
                )
            seen.add(key)
            lines.lines[(*path, key)] = line
            _walk(loader, value_node, (*path, key), lines, problems, rel, active)
            lines.lines[(*path, key)] = line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(loader, item, (*path, index), lines, problems, rel, active)
    active.discard(id(node))


def _key(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_object(node)
        return value if isinstance(value, Hashable) else repr(value)
    return repr(node)
