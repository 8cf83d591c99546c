"""The resolved app: what graph.yml and the node files say, once loaded and validated.

Everything here is a frozen dataclass built by :func:`patterns.graph.loader.load_app`. The
engine reads it; nothing here touches a store or runs a node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from patterns.errors import ConfigError, Problem, did_you_mean

TableMode = Literal["r", "w"]
NodeKind = Literal["python", "sql", "chart", "subgraph", "webhook", "component"]


class _Missing:
    """A parameter with no default: a value must be given."""

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


class _RuntimeDefault:
    """A default that is not a literal (``default=datetime.now()``): the node computes it."""

    def __repr__(self) -> str:
        return "RUNTIME_DEFAULT"

    def __reduce__(self) -> str:
        return "RUNTIME_DEFAULT"


MISSING: Final = _Missing()
RUNTIME_DEFAULT: Final = _RuntimeDefault()

PARAMETER_TYPES: Final = ("str", "int", "float", "bool", "datetime", "date", "list", "connection")


@dataclass(frozen=True)
class TableDecl:
    """A ``Table("name", mode)`` found in a node file."""

    port: str
    mode: TableMode
    line: int
    required: bool = True
    description: str | None = None


@dataclass(frozen=True)
class ParameterDecl:
    """A ``Parameter("name", type=..., default=...)`` found in a node file."""

    name: str
    type: str
    default: Any = field(hash=False)
    line: int
    description: str | None = None
    connection_kind: str | None = None

    @property
    def required(self) -> bool:
        return self.default is MISSING


@dataclass(frozen=True)
class NodeInterface:
    """What a node declares: its tables (ports), parameters and whether it keeps state."""

    tables: tuple[TableDecl, ...] = ()
    parameters: tuple[ParameterDecl, ...] = ()
    uses_state: bool = False

    def table(self, port: str) -> TableDecl | None:
        return next((t for t in self.tables if t.port == port), None)

    def parameter(self, name: str) -> ParameterDecl | None:
        return next((p for p in self.parameters if p.name == name), None)


@dataclass(frozen=True)
class AlertSettings:
    """Where a node's alerts go (``settings.alerts``; see :mod:`patterns.engine.alerts`)."""

    #: An http(s) URL, or a ``${{ secret }}`` reference to one.
    webhook: str | None = None
    #: A shell command (a string), or a program and its arguments (a list).
    command: str | tuple[str, ...] | None = None
    #: Which run ends alert: ``failed``, ``timed_out``, ``recovered``.
    when: tuple[str, ...] = ("failed", "timed_out", "recovered")
    #: At most one alert per node this often (0: every one); the rest are counted.
    quiet_minutes: float = 15


@dataclass(frozen=True)
class Settings:
    """Run settings of an app, or of one node (the app's with the node's overrides)."""

    time_limit_seconds: float = 600
    checkpoint_seconds: float = 30
    retries_count: int = 0
    retries_backoff_seconds: float = 10
    sql_dialect: str = "postgres"
    keep_versions: int = 5
    #: The most columns a table may have (past it, an append or webhook is refused).
    max_columns: int = 1000
    timezone: str = "UTC"
    #: Where alerts about this node's runs go; None: nowhere.
    alerts: AlertSettings | None = None
    #: Settings read by later parts (webhook_headers, webhook_query, response_timeout_seconds,
    #: max_body_bytes). Unknown keys never get here: they are problems.
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Node:
    """One entry of ``functions:``, resolved."""

    id: str
    kind: NodeKind
    title: str
    file: Path | None
    rel_file: str | None
    line: int
    trigger: str | None
    inputs: Mapping[str, str] = field(hash=False)
    outputs: Mapping[str, str] = field(hash=False)
    parameter_values: Mapping[str, Any] = field(hash=False)
    interface: NodeInterface
    settings: Settings
    webhook_table: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False)
    #: The folder the node's file is run from (its package), when not the app's: the
    #: component it belongs to. rel_file is relative to it.
    root: Path | None = None
    #: The id of the component or subgraph node this node runs inside (None: top level).
    parent: str | None = None
    #: For a component or subgraph node: the ids of the nodes it runs.
    members: tuple[str, ...] = ()
    #: Problems confined to this node (a parameter without a value, a missing secret or
    #: connection, ...): the node does not run until they are fixed; the rest of the app does.
    needs_configuration: tuple[Problem, ...] = field(default=(), hash=False)
    #: The graph.yml line of each ``parameter_values`` entry (for locating problems).
    value_lines: Mapping[str, int] = field(default_factory=dict, hash=False)

    @property
    def configured(self) -> bool:
        """True when nothing stops the node from running."""
        return not self.needs_configuration

    @property
    def label(self) -> str:
        """How messages name this node: its file, webhook table or component."""
        if self.rel_file is not None:
            return self.rel_file
        if self.webhook_table is not None:
            return f"webhook {self.webhook_table}"
        return str(self.raw.get("uses", self.id))

    def store_for(self, port: str) -> str:
        """The store a port is bound to: its inputs/outputs mapping, else the port name."""
        if port in self.inputs:
            return self.inputs[port]
        if port in self.outputs:
            return self.outputs[port]
        return port

    def reads(self) -> tuple[str, ...]:
        """Store names this node reads."""
        if self.kind == "chart":
            chart_input = self.raw.get("chart_input")
            return (str(chart_input),) if chart_input else ()
        if self.kind in ("component", "subgraph"):
            return _unique(self.inputs.values())
        return _unique(self.store_for(t.port) for t in self.interface.tables if t.mode == "r")

    def writes(self) -> tuple[str, ...]:
        """Store names this node writes."""
        if self.kind == "webhook":
            return (self.webhook_table,) if self.webhook_table else ()
        if self.kind in ("component", "subgraph"):
            return _unique(self.outputs.values())
        return _unique(self.store_for(t.port) for t in self.interface.tables if t.mode == "w")


@dataclass(frozen=True)
class StoreDecl:
    """One entry of ``stores:`` (a table; legacy ``stream:`` entries load as tables)."""

    name: str
    id: str | None
    line: int
    schema: Any = field(default=None, hash=False)
    display: Any = field(default=None, hash=False)
    description: str | None = None
    #: What happens to a value that does not fit its column: refuse (None: the default),
    #: variant, discard_value, discard_row (see patterns.store.conform).
    contract: str | None = None
    #: The ``storages:`` entry this table lives in (an outside database, read-only), and
    #: the table's name there (``schema.table``; default: the store's name).
    storage: str | None = None
    storage_table: str | None = None


@dataclass(frozen=True)
class StorageDecl:
    """One entry of ``storages:``: an outside database whose tables stores may name."""

    name: str
    line: int
    #: A literal URL or file path, or a ``${{ secret }}`` / ``${{ connection.name }}``
    #: reference (resolved when the app is checked or run; see patterns.engine.storages).
    connection: str


@dataclass(frozen=True)
class App:
    """A loaded, valid app."""

    root: Path
    graph_file: Path
    title: str
    slug: str
    description_file: str | None
    requirements_file: str | None
    settings: Settings
    nodes: tuple[Node, ...]
    stores: tuple[StoreDecl, ...]
    docs: tuple[Any, ...] = field(default=(), hash=False)
    dashboards: tuple[Any, ...] = field(default=(), hash=False)
    exposes: Any = field(default=None, hash=False)
    schemas: Any = field(default=None, hash=False)
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False)
    storages: tuple[StorageDecl, ...] = ()
    #: Things the original format tolerated and that are ignored here (unknown keys).
    warnings: tuple[Problem, ...] = field(default=(), hash=False)

    @property
    def needs_configuration(self) -> tuple[Problem, ...]:
        """Every node's configuration problems, in graph order."""
        return tuple(p for n in self.nodes for p in n.needs_configuration)

    def node(self, key: str) -> Node:
        """A node by id, node_file, file path (absolute, or relative to cwd or root) or title."""
        for node in self.nodes:
            if key in (node.id, node.rel_file):
                return node
        wanted = {Path(key).resolve(), (self.root / key).resolve()}
        for node in self.nodes:
            if node.file is not None and node.file.resolve() in wanted:
                return node
        titled = [n for n in self.nodes if key in (n.title, n.webhook_table)]
        if len(titled) == 1:
            return titled[0]
        valid = (
            ", ".join(f"{n.id} ({n.rel_file or n.label})" for n in self.nodes)
            or "none: add a function to graph.yml"
        )
        hint = did_you_mean(key, [k for n in self.nodes
                                  for k in (n.id, n.rel_file, n.title, n.webhook_table) if k])
        raise ConfigError(f"no node '{key}' in app '{self.title}'{hint}: valid nodes are "
                          f"{valid}")

    def store(self, name: str) -> StoreDecl:
        for store in self.stores:
            if store.name == name:
                return store
        valid = ", ".join(s.name for s in self.stores) or "none"
        raise ConfigError(
            f"no store '{name}' in app '{self.title}'"
            f"{did_you_mean(name, [s.name for s in self.stores])}: valid stores are {valid}; "
            f"add `- table: {name}` under `stores:` in graph.yml"
        )

    def node_roots(self) -> tuple[Path, ...]:
        """The folders other than the app's that nodes run from (components)."""
        return tuple(dict.fromkeys(n.root for n in self.nodes if n.root is not None))

    def entry_members(self, container: Node) -> list[Node]:
        """The Python and SQL nodes a component or subgraph node starts from when it is
        triggered: its members (nested ones too) that read nothing another member writes."""
        members: list[Node] = []
        frontier = [container.id]
        while frontier:
            parent = frontier.pop()
            for node in [n for n in self.nodes if n.parent == parent]:
                members.append(node)
                frontier.append(node.id)
        runnable = [n for n in members if n.kind in ("python", "sql")]
        written = {s for n in runnable for s in n.writes()}
        return [n for n in runnable if not written.intersection(n.reads())] or runnable

    def readers_of(self, store: str) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if store in n.reads())

    def writers_of(self, store: str) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if store in n.writes())

    def downstream(self, node: Node) -> tuple[Node, ...]:
        """Nodes (other than ``node``) that read a store ``node`` writes, in graph order."""
        written = set(node.writes())
        return tuple(n for n in self.nodes if n.id != node.id and written.intersection(n.reads()))

    def to_manifest(self) -> dict[str, Any]:
        """The resolved graph as a JSON-able document."""
        from patterns.graph.manifest import app_manifest

        return app_manifest(self)


def _unique(items: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(i) for i in items))
