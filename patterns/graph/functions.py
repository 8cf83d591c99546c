"""Build one :class:`Node` from a ``functions:`` entry of graph.yml.

Checks what can be checked from the entry alone: its keys, that it runs exactly one thing,
its id, its node_file, its trigger; then reads the node file's interface.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from croniter import croniter

from patterns.errors import Problem
from patterns.graph.ids import derived_id, is_valid_id
from patterns.graph.interface import read_python_interface
from patterns.graph.limits import MAX_PATH_CHARS
from patterns.graph.model import Node, NodeInterface, NodeKind, Settings
from patterns.graph.spec import FunctionSpec, validate_part
from patterns.graph.sql_interface import read_sql_interface
from patterns.graph.yaml_lines import KeyPath, LineMap

SOURCES: Final = ("node_file", "webhook", "uses")
CRON_EXAMPLE: Final = "*/5 * * * *"
_SUFFIX_KINDS: Final[tuple[tuple[str, NodeKind], ...]] = (
    (".py", "python"),
    (".sql", "sql"),
    (".json", "chart"),
)

SettingsBuilder = Callable[[Settings, Mapping[str, Any] | None, KeyPath, str, str | None], Settings]


@dataclass(frozen=True)
class NodeEntry:
    """A node with the place of its entry in graph.yml (for locating problems)."""

    node: Node
    path: KeyPath
    #: True when the node file was read, so its interface is what the node declares.
    discovered: bool = False


@dataclass
class FunctionContext:
    root: Path
    rel: str
    lines: LineMap
    settings: Settings
    build_settings: SettingsBuilder
    problems: list[Problem] = field(default_factory=list)
    uses_seen: dict[str, int] = field(default_factory=dict)
    #: Unknown keys, which the original format ignored: warnings, not problems.
    ignored: list[Problem] = field(default_factory=list)

    def problem(self, path: KeyPath, message: str, fix: str | None, node: str | None) -> None:
        self.problems.append(Problem(self.rel, self.lines.line(path), message, fix, node))


def node_kind(node_file: str) -> NodeKind | None:
    """The kind of node a node_file makes, or None when the extension is not supported."""
    lowered = node_file.lower()
    if lowered.endswith(("graph.yml", "graph.yaml")):
        return "subgraph"
    for suffix, kind in _SUFFIX_KINDS:
        if lowered.endswith(suffix):
            return kind
    return None


def build_node(ctx: FunctionContext, index: int, raw: Any) -> NodeEntry | None:
    path: KeyPath = ("functions", index)
    given = [(k, raw[k]) for k in SOURCES if raw.get(k)] if isinstance(raw, dict) else []
    label = _label(*given[0]) if len(given) == 1 else None
    where = f"function '{label}'" if label else f"function #{index + 1}"
    spec, problems = validate_part(FunctionSpec, raw, path, where, ctx.lines, ctx.rel, label,
                                   ctx.ignored)
    ctx.problems.extend(problems)
    if spec is None:
        return None
    sources = [key for key in SOURCES if getattr(spec, key)]
    if len(sources) != 1:
        has = " and ".join(sources) if sources else "none of them"
        ctx.problem(
            path,
            f"{where} must have exactly one of node_file, webhook or uses; it has {has}",
            "give each function one `node_file: <file>`, `webhook: <table>` or "
            "`uses: <org/component@vN>`",
            label,
        )
        return None
    source = sources[0]
    value = str(getattr(spec, source))
    label = _label(source, value)
    kind, file, interface = _resolve_source(ctx, path, source, value, label)
    if kind is None:
        return None
    node_id = _node_id(ctx, path, spec, source, value, label)
    trigger = _trigger(ctx, path, spec.trigger, label)
    settings = ctx.build_settings(
        ctx.settings, spec.settings, (*path, "settings"), f"settings of {where}", label
    )
    default_title = Path(value).stem if source == "node_file" else value
    if source == "uses":
        default_title = value.split("/")[-1].split("@")[0] or value
    node = Node(
        id=node_id,
        kind=kind,
        title=spec.title or default_title,
        file=file,
        rel_file=value if source == "node_file" else None,
        line=ctx.lines.line(path) or 0,
        trigger=trigger,
        inputs=dict(spec.inputs or {}),
        outputs=dict(spec.outputs or {}),
        parameter_values=dict(spec.parameter_values or {}),
        interface=interface or NodeInterface(),
        settings=settings,
        webhook_table=value if source == "webhook" else None,
        raw=dict(raw),
    )
    return NodeEntry(node, path, discovered=interface is not None)


def _label(source: str, value: Any) -> str:
    """How problems name a function (the same as :attr:`Node.label`)."""
    return f"webhook {value}" if source == "webhook" else str(value)


def _resolve_source(
    ctx: FunctionContext, path: KeyPath, source: str, value: str, label: str
) -> tuple[NodeKind | None, Path | None, NodeInterface | None]:
    """The kind, file and interface (None when not read) of a function."""
    if source == "webhook":
        return "webhook", None, None
    if source == "uses":
        return "component", None, None
    kind = node_kind(value)
    if kind is None:
        ctx.problem(
            (*path, "node_file"),
            f"node_file '{value}' is not a kind of node file",
            "use a .py or .sql file, a chart .json or a sub/graph.yml",
            label,
        )
        return None, None, None
    file = _inside_app(ctx, path, value, label)
    if file is None:
        return None, None, None
    if not file.is_file():
        ctx.problem(
            (*path, "node_file"),
            f"node_file '{value}' does not exist",
            f"create {value} in the app folder or fix the path",
            label,
        )
        return kind, file, None
    read = {"python": read_python_interface, "sql": read_sql_interface}.get(kind)
    if read is None:
        return kind, file, None
    interface, problems = read(file, value)
    ctx.problems.extend(problems)
    return kind, file, interface


def _inside_app(ctx: FunctionContext, path: KeyPath, value: str, label: str) -> Path | None:
    """The node file ``value`` names, or None (and a problem) when it cannot be a file of the
    app: a NUL byte, an overlong path, or a path outside the app folder."""
    where = (*path, "node_file")
    if "\0" in value or len(value) > MAX_PATH_CHARS:
        reason = "holds a NUL byte" if "\0" in value else f"is over {MAX_PATH_CHARS} characters"
        ctx.problem(where, f"node_file {value[:80]!r} {reason}",  # no node: the line says
                    "give the path of a file in the app folder, such as nodes/clean.py", None)
        return None
    try:
        file = (ctx.root / value).resolve()
        inside = file.is_relative_to(ctx.root)
    except (OSError, RuntimeError, ValueError) as error:
        ctx.problem(where, f"node_file '{value}' cannot be resolved: {error}",
                    "give the path of a file in the app folder, such as nodes/clean.py", label)
        return None
    if not inside:
        ctx.problem(where, f"node_file '{value}' is outside the app folder",
                    "move the file into the app folder (an app is one self-contained "
                    "folder) and give its path relative to graph.yml", label)
        return None
    return file


def _node_id(
    ctx: FunctionContext, path: KeyPath, spec: FunctionSpec, source: str, value: str, label: str
) -> str:
    if spec.id is not None:
        if not is_valid_id(spec.id):
            ctx.problem(
                (*path, "id"),
                f"node id '{spec.id}' must be lowercase letters and digits only",
                "use an id such as 'a1b2c3d4', or remove the line to get a derived one",
                label,
            )
        return spec.id
    if source == "uses":
        count = ctx.uses_seen[value] = ctx.uses_seen.get(value, 0) + 1
        return derived_id(value if count == 1 else f"{value}#{count}")
    return derived_id(value)


def _trigger(ctx: FunctionContext, path: KeyPath, trigger: str | None, label: str) -> str | None:
    if trigger is None:
        return None
    text = trigger.strip()
    if text == "manual" or (text and croniter.is_valid(text)):
        return text
    ctx.problem(
        (*path, "trigger"),
        f"trigger {trigger!r} is not `manual` or a cron string",
        f'write a cron string such as trigger: "{CRON_EXAMPLE}" (every 5 minutes) '
        "or trigger: manual",
        label,
    )
    return None
