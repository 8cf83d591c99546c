"""Load an app: read graph.yml and the node files, validate everything, build an :class:`App`.

Every problem found is collected and raised as one :class:`GraphError`, so a user sees them
all at once; nothing runs unless the graph itself is sound. A problem confined to one node (a
parameter without a value, a value for a parameter it does not declare) does not stop the
app: the node is marked as needing configuration (:attr:`Node.needs_configuration`) and the
rest runs. Unknown keys, which the original format ignored, are warnings (:attr:`App.warnings`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from patterns.errors import GraphError, Problem
from patterns.graph.bindings import check_bindings, check_duplicates
from patterns.graph.functions import FunctionContext, build_node
from patterns.graph.limits import MAX_GRAPH_BYTES, read_text_limited
from patterns.graph.model import AlertSettings, App, Settings, StorageDecl, StoreDecl
from patterns.graph.nesting import expand_nested
from patterns.graph.parameter_values import check_parameters
from patterns.graph.spec import (
    EXTRA_SETTINGS,
    AlertsSpec,
    GraphSpec,
    SettingsSpec,
    StorageSpec,
    StoreSpec,
    validate_part,
)
from patterns.graph.yaml_lines import LineMap, YamlDocument, read_yaml

GRAPH_FILE = "graph.yml"


def read_graph_document(path: Path, rel: str) -> YamlDocument:
    """A graph.yml (or component manifest) read within its size limit and parsed with its
    lines; GraphError when it cannot be read or is not YAML."""
    text, problems = read_text_limited(path, rel, MAX_GRAPH_BYTES, rel)
    if text is None:
        raise GraphError(problems)
    document = read_yaml(text, rel)
    if document.data is None and document.problems:
        raise GraphError(document.problems)
    return document


def load_app(path: str | Path, param_overrides: Mapping[str, str] | None = None) -> App:
    """Load the app at ``path`` (its folder or its graph.yml); GraphError lists every problem."""
    graph_file = find_graph_file(Path(path))
    root = graph_file.parent.resolve()
    rel = graph_file.name
    document = read_graph_document(graph_file, rel)
    ctx = _Loading(root=root, rel=rel, lines=document.lines, problems=list(document.problems))
    app = ctx.build(document.data if document.data is not None else {}, param_overrides or {})
    if ctx.problems:
        unique = list(dict.fromkeys(ctx.problems))
        raise GraphError(sorted(unique, key=_problem_order))
    assert app is not None
    return app


def find_graph_file(path: Path) -> Path:
    """The graph.yml for ``path`` (an app folder or the file itself)."""
    candidate = path / GRAPH_FILE if path.is_dir() or not path.suffix else path
    if candidate.is_file():
        return candidate.resolve()
    folder = candidate.parent
    raise GraphError(
        [
            Problem(
                str(candidate),
                None,
                f"no {GRAPH_FILE} in {folder}",
                f"create an app with `patterns create app {folder}` or give the folder "
                f"that holds {GRAPH_FILE}",
            )
        ]
    )


def slugify(text: str) -> str:
    """Lowercase words joined by hyphens ("My App!" -> "my-app")."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass
class _Loading:
    root: Path
    rel: str
    lines: LineMap
    problems: list[Problem] = field(default_factory=list)
    ignored: list[Problem] = field(default_factory=list)

    def build(self, data: Any, overrides: Mapping[str, str]) -> App | None:
        spec, problems = validate_part(GraphSpec, data, (), GRAPH_FILE, self.lines, self.rel, None,
                                       self.ignored)
        self.problems.extend(problems)
        if spec is None:
            return None
        settings = self.settings(Settings(), spec.settings, ("settings",), "settings", None)
        storages = self.storages(spec.storages or [])
        stores = self.stores(spec.stores or [], {s.name for s in storages})
        ctx = FunctionContext(self.root, self.rel, self.lines, settings, self.settings,
                              ignored=self.ignored)
        entries = [
            entry
            for index, raw in enumerate(spec.functions or [])
            if (entry := build_node(ctx, index, raw)) is not None
        ]
        self.problems.extend(ctx.problems)
        self.problems.extend(check_duplicates(entries, self.rel, self.lines))
        entries, nested_stores = expand_nested(self, entries, stores)
        stores += nested_stores
        store_names = {s.name for s in stores}
        top = [e for e in entries if e.node.parent is None]  # nested ones are checked inside
        self.problems.extend(check_bindings(top, store_names, self.rel, self.lines))
        outside = {s.name: s.storage for s in stores if s.storage is not None}
        for entry in entries:
            table = entry.node.webhook_table
            if table in outside:
                self.problems.append(Problem(
                    self.rel, self.lines.line((*entry.path, "webhook")),
                    f"webhook {table} writes table '{table}', which lives in storage "
                    f"'{outside[table]}' (an outside database, read-only)",
                    "give the webhook a table of the app's own store (`- table: ...` "
                    "without `storage:`)", entry.node.label))
        nodes, problems = check_parameters(entries, overrides, self.rel, self.lines)
        self.problems.extend(problems)
        title = spec.title or self.root.name
        return App(
            root=self.root,
            graph_file=self.root / self.rel,
            title=title,
            slug=spec.slug or slugify(title) or slugify(self.root.name) or "app",
            description_file=spec.description_file,
            requirements_file=spec.requirements_file,
            settings=settings,
            nodes=tuple(nodes),
            stores=tuple(stores),
            docs=tuple(spec.docs or ()),
            dashboards=tuple(spec.dashboards or ()),
            exposes=spec.exposes,
            schemas=spec.schemas,
            raw=dict(data),
            storages=tuple(storages),
            warnings=tuple(dict.fromkeys(self.ignored)),
        )

    def settings(
        self,
        base: Settings,
        data: Mapping[str, Any] | None,
        path: tuple[Any, ...],
        where: str,
        node: str | None,
    ) -> Settings:
        """``base`` with the keys given in a ``settings:`` mapping applied."""
        if data is None:
            return base
        spec, problems = validate_part(SettingsSpec, data, path, where, self.lines, self.rel, node)
        self.problems.extend(problems)
        if spec is None:
            return base
        given = spec.model_fields_set
        changes: dict[str, Any] = {
            name: getattr(spec, name)
            for name in ("time_limit_seconds", "checkpoint_seconds", "sql_dialect")
            if name in given
        }
        changes.update(
            {name: getattr(spec, name) for name in ("keep_versions", "timezone", "max_columns")
             if name in given}
        )
        if spec.retries is not None:
            retries_given = spec.retries.model_fields_set
            if "count" in retries_given:
                changes["retries_count"] = spec.retries.count
            if "backoff_seconds" in retries_given:
                changes["retries_backoff_seconds"] = spec.retries.backoff_seconds
        if "alerts" in given:
            changes["alerts"] = alert_settings(spec.alerts)
        extra = dict(base.extra)
        extra.update({name: getattr(spec, name) for name in EXTRA_SETTINGS if name in given})
        return replace(base, **changes, extra=extra)

    def storages(self, items: list[Any]) -> list[StorageDecl]:
        """The ``storages:`` entries: outside databases that stores may name."""
        storages: list[StorageDecl] = []
        for index, raw in enumerate(items):
            path = ("storages", index)
            label = raw.get("name") if isinstance(raw, dict) else None
            where = f"storage '{label}'" if label else f"storage #{index + 1}"
            spec, problems = validate_part(StorageSpec, raw, path, where, self.lines, self.rel,
                                           None, self.ignored)
            self.problems.extend(problems)
            if spec is None:
                continue
            line = self.lines.line(path) or 0
            if any(s.name == spec.name for s in storages):
                self.problems.append(Problem(self.rel, line, f"duplicate storage '{spec.name}'",
                                             "keep one `- name:` entry per storage"))
                continue
            connection = spec.connection or f"${{{{ connection.{spec.name} }}}}"
            storages.append(StorageDecl(spec.name, line, connection))
        return storages

    def stores(self, items: list[Any], storages: set[str]) -> list[StoreDecl]:
        stores: list[StoreDecl] = []
        seen: dict[str, int | None] = {}
        for index, raw in enumerate(items):
            path = ("stores", index)
            line = self.lines.line(path)
            label = raw.get("table") or raw.get("stream") if isinstance(raw, dict) else None
            where = f"store '{label}'" if label else f"store #{index + 1}"
            spec, problems = validate_part(StoreSpec, raw, path, where, self.lines, self.rel, None,
                                           self.ignored)
            self.problems.extend(problems)
            if spec is None:
                continue
            if spec.storage is not None and spec.storage not in storages:
                self.problems.append(Problem(
                    self.rel, self.lines.line((*path, "storage")),
                    f"{where} names storage '{spec.storage}', which is not in `storages:`",
                    f"add `- name: {spec.storage}` under `storages:` (with its `connection:`), "
                    f"or remove `storage:` to keep the table in the app's own store"))
                continue
            names = [n for n in (spec.table, spec.stream) if n]
            if len(names) != 1:
                self.problems.append(
                    Problem(
                        self.rel,
                        line,
                        f"{where} needs exactly one of `table:` or `stream:`",
                        "write `- table: <name>`",
                    )
                )
                continue
            name = names[0]
            if name in seen:
                self.problems.append(
                    Problem(
                        self.rel,
                        line,
                        f"duplicate store '{name}' (also at line {seen[name]})",
                        "keep one `- table:` entry per store",
                    )
                )
                continue
            seen[name] = line
            stores.append(
                StoreDecl(
                    name=name,
                    id=spec.id,
                    line=line or 0,
                    schema=spec.schema_,
                    display=spec.display,
                    description=spec.description,
                    contract=spec.contract,
                    storage=spec.storage,
                    storage_table=spec.storage_table,
                )
            )
        return stores


def _problem_order(problem: Problem) -> tuple[bool, str, int]:
    return (problem.file != GRAPH_FILE, problem.file, problem.line or 0)


def alert_settings(spec: AlertsSpec | None) -> AlertSettings | None:
    """``settings.alerts`` as the engine uses it (None: ``false``, no alerts)."""
    if spec is None:
        return None
    command = spec.command if isinstance(spec.command, str) or spec.command is None \
        else tuple(spec.command)
    return AlertSettings(webhook=spec.webhook, command=command, when=tuple(spec.when),
                         quiet_minutes=spec.quiet_minutes)
