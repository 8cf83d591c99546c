"""Read YAML into plain Python values while keeping the line of every key and list item.

PyYAML composes the document into a node tree (each node knows its position), then builds
the values from that same tree. Walking the tree gives a map from a value's path, e.g.
``("functions", 0, "trigger")``, to its 1-based line, so every problem can point at a line.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import yaml

from patterns.errors import Problem

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
    """Parse ``text``; syntax errors and duplicate keys come back as problems of ``rel``."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines = LineMap()
        problems: list[Problem] = []
        if node is not None:
            _walk(loader, node, (), lines, problems, rel, set())
        data = loader.construct_document(node) if node is not None else None
        return YamlDocument(data, lines, problems)
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
    except yaml.YAMLError as error:
        return YamlDocument(None, LineMap(), [Problem(rel, None, f"YAML error: {error}")])
    finally:
        loader.dispose()


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
