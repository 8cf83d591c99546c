"""Change graph.yml the way a user would: keep its comments, key order and indentation.

Used by the devkit (``patterns create app|node|webhook|table``). Edits go through
ruamel.yaml's round-trip mode; a comment that followed the last entry of a list stays after
the list when an entry is appended.
"""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any, Final

from croniter import croniter
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from patterns.errors import ConfigError
from patterns.graph.functions import CRON_EXAMPLE, node_kind
from patterns.graph.ids import derived_id, is_valid_id, random_id
from patterns.graph.limits import MAX_GRAPH_BYTES, read_text_limited
from patterns.graph.loader import GRAPH_FILE, slugify
from patterns.graph.yaml_lines import read_yaml

_PLAIN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.()-]*$")
_TEMPLATE: Final = """\
title: {title}
functions: []
stores: []
# settings:
#   time_limit_seconds: 600    # a run is stopped (and rolled back) after this long
#   retries: {{count: 2, backoff_seconds: 10}}
#   sql_dialect: postgres      # the dialect SQL nodes are written in (or duckdb)
#   timezone: UTC              # the timezone of cron triggers
"""


def create_app(directory: Path, title: str | None = None) -> Path:
    """Create ``directory`` with a new graph.yml; returns the graph.yml path."""
    graph_file = directory / GRAPH_FILE
    if graph_file.exists():
        raise ConfigError(
            f"{graph_file} already exists: pick another folder, or edit the app that is there"
        )
    directory.mkdir(parents=True, exist_ok=True)
    name = title or directory.resolve().name or "app"
    shown = name if _PLAIN.match(name) and slugify(name) else _quoted(name)
    graph_file.write_text(_TEMPLATE.format(title=shown), encoding="utf-8")
    return graph_file


def add_node(
    app_dir: Path, node_file: str, *, id: str | None = None, trigger: str | None = None,
    outputs: dict[str, str] | None = None, title: str | None = None,
) -> str:
    """Register ``node_file`` under ``functions:`` (with ``outputs:`` port → store
    mappings and a ``title`` if given); returns the node's id."""
    if node_kind(node_file) is None:
        raise ConfigError(
            f"cannot add node_file '{node_file}': use a .py or .sql file, "
            "a chart .json or a sub/graph.yml"
        )
    if trigger is not None and trigger != "manual" and not croniter.is_valid(trigger):
        raise ConfigError(
            f'trigger {trigger!r} is not `manual` or a cron string such as "{CRON_EXAMPLE}"'
        )
    document = _GraphDocument(app_dir)
    functions = document.sequence("functions")
    if any(_get(f, "node_file") == node_file for f in functions):
        raise ConfigError(f"{node_file} is already a node of {document.path}")
    node_id = _new_id(functions, id)
    entry = CommentedMap({"node_file": node_file, "id": node_id})
    if title:
        entry["title"] = title
    if trigger is not None:
        entry["trigger"] = trigger
    if outputs:
        entry["outputs"] = CommentedMap(outputs)
    document.append(functions, entry)
    document.save()
    return node_id


def add_store(app_dir: Path, name: str) -> None:
    """Add ``- table: name`` under ``stores:``."""
    document = _GraphDocument(app_dir)
    stores = document.sequence("stores")
    if any(name in (_get(s, "table"), _get(s, "stream")) for s in stores):
        raise ConfigError(f"store '{name}' already exists in {document.path}")
    document.append(stores, CommentedMap({"table": name}))
    document.save()


def add_webhook(app_dir: Path, table: str) -> str:
    """Add a webhook function writing ``table`` (and the store if missing); returns its id."""
    document = _GraphDocument(app_dir)
    functions = document.sequence("functions")
    if any(_get(f, "webhook") == table for f in functions):
        raise ConfigError(f"table '{table}' already has a webhook in {document.path}")
    node_id = _new_id(functions, None)
    document.append(functions, CommentedMap({"webhook": table, "id": node_id}))
    stores = document.sequence("stores")
    if not any(table in (_get(s, "table"), _get(s, "stream")) for s in stores):
        document.append(stores, CommentedMap({"table": table}))
    document.save()
    return node_id


def add_uses(app_dir: Path, uses: str, *, title: str | None = None,
             id: str | None = None) -> str:
    """Add a component node (``uses: org/name@vN``); returns its id."""
    document = _GraphDocument(app_dir)
    functions = document.sequence("functions")
    node_id = _new_id(functions, id)
    entry = CommentedMap({"uses": uses, "id": node_id})
    if title:
        entry["title"] = title
    document.append(functions, entry)
    document.save()
    return node_id


def ensure_ids(app_dir: Path) -> list[str]:
    """Write an id into every function that has none; returns the ids added.

    The id written is the one the loader derives for that function, so a node keeps its id
    (and its run history) when the id is written down.
    """
    document = _GraphDocument(app_dir)
    functions = document.sequence("functions")
    taken = {str(_get(f, "id")) for f in functions if _get(f, "id") is not None}
    added: list[str] = []
    uses_seen: dict[str, int] = {}
    for entry in functions:
        if not isinstance(entry, CommentedMap):
            continue
        uses = entry.get("uses")
        if uses is not None:
            count = uses_seen[str(uses)] = uses_seen.get(str(uses), 0) + 1
        if "id" in entry:
            continue
        source = entry.get("node_file") or entry.get("webhook") or uses
        if source is None:
            continue
        if uses is not None and source == uses and count > 1:
            source = f"{uses}#{count}"
        node_id = derived_id(str(source))
        if node_id in taken:
            node_id = random_id(taken)
        taken.add(node_id)
        _insert_after_source(entry, node_id)
        added.append(node_id)
    if added:
        document.save()
    return added


class _GraphDocument:
    """graph.yml loaded in round-trip mode."""

    def __init__(self, app_dir: Path) -> None:
        self.path = app_dir / GRAPH_FILE if app_dir.is_dir() or not app_dir.suffix else app_dir
        if not self.path.is_file():
            raise ConfigError(
                f"no {GRAPH_FILE} in {self.path.parent}: "
                f"create an app with `patterns create app {self.path.parent}`"
            )
        text, problems = read_text_limited(self.path, GRAPH_FILE, MAX_GRAPH_BYTES, GRAPH_FILE)
        if text is not None and not problems:
            problems = read_yaml(text, GRAPH_FILE).problems  # the budgets, before ruamel
        if text is None or problems:
            raise ConfigError(f"cannot edit {self.path}: {problems[0]}")
        self.yaml = YAML()
        self.yaml.preserve_quotes = True
        offset = _sequence_offset(text)
        self.yaml.indent(mapping=2, sequence=offset + 2, offset=offset)
        try:
            data = self.yaml.load(text)
        except YAMLError as error:
            raise ConfigError(f"cannot edit {self.path}: it is not valid YAML ({error})") from None
        if data is None:
            data = CommentedMap()
        if not isinstance(data, CommentedMap):
            raise ConfigError(f"cannot edit {self.path}: its top level must be a mapping")
        self.data = data

    def sequence(self, key: str) -> CommentedSeq:
        value = self.data.get(key)
        if value is None:
            value = CommentedSeq()
            self.data[key] = value
        if not isinstance(value, CommentedSeq):
            raise ConfigError(f"cannot edit {self.path}: `{key}:` must be a list")
        return value

    def append(self, sequence: CommentedSeq, item: CommentedMap) -> None:
        sequence.fa.set_block_style()
        _move_trailing_comment(sequence, item)
        sequence.append(item)

    def save(self) -> None:
        out = io.StringIO()
        self.yaml.dump(self.data, out)
        self.path.write_text(out.getvalue(), encoding="utf-8")


def _new_id(functions: CommentedSeq, wanted: str | None) -> str:
    taken = {str(_get(f, "id")) for f in functions if _get(f, "id") is not None}
    if wanted is None:
        return random_id(taken)
    if not is_valid_id(wanted):
        raise ConfigError(f"node id '{wanted}' must be lowercase letters and digits only")
    if wanted in taken:
        raise ConfigError(f"node id '{wanted}' is already used by another function")
    return wanted


def _get(entry: Any, key: str) -> Any:
    return entry.get(key) if isinstance(entry, dict) else None


def _insert_after_source(entry: CommentedMap, node_id: str) -> None:
    keys = list(entry.keys())
    source = next(k for k in ("node_file", "webhook", "uses") if k in entry)
    entry.insert(keys.index(source) + 1, "id", node_id)


def _sequence_offset(text: str) -> int:
    """How far list items are indented under their key in this file (0 or 2, usually)."""
    match = re.search(r"^[A-Za-z_]\w*:[ \t]*(?:#.*)?\n( *)- ", text, re.MULTILINE)
    return len(match.group(1)) if match else 2


def _last_holder(node: Any) -> tuple[Any, Any, int] | None:
    """Where ruamel keeps the comment after the last line of ``node``."""
    while True:
        if isinstance(node, CommentedMap) and node:
            key = list(node.keys())[-1]
            position = 2
        elif isinstance(node, CommentedSeq) and node:
            key, position = len(node) - 1, 0
        else:
            return None
        value = node[key]
        if isinstance(value, CommentedMap | CommentedSeq) and value:
            node = value
            continue
        return node, key, position


def _move_trailing_comment(sequence: CommentedSeq, item: CommentedMap) -> None:
    """Keep full-line comments that followed the list after it once ``item`` is appended."""
    old = _last_holder(sequence)
    new = _last_holder(item)
    if old is None or new is None:
        return
    holder, key, position = old
    slot = holder.ca.items.get(key)
    if not slot or slot[position] is None:
        return
    token = slot[position]
    head, newline, rest = token.value.partition("\n")
    if not rest:
        return
    moved = copy.copy(token)
    token.value = head + newline
    moved.value = "\n" + rest
    new_holder, new_key, new_position = new
    new_slot: list[Any] = [None, None, None, None] if new_position == 2 else [None, None]
    new_slot[new_position] = moved
    new_holder.ca.items[new_key] = new_slot


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def remove_node(app_dir: Path, node_id: str) -> dict[str, Any]:
    """Take the function with id ``node_id`` out of ``functions:``; returns its entry as it
    was (its file and tables are left alone)."""
    document = _GraphDocument(app_dir)
    functions = document.sequence("functions")
    for index, entry in enumerate(functions):
        if str(_get(entry, "id")) == node_id:
            gone = dict(entry) if isinstance(entry, CommentedMap) else {}
            del functions[index]
            document.save()
            return gone
    raise ConfigError(f"no function with id '{node_id}' in {document.path}")


def remove_store(app_dir: Path, name: str) -> None:
    """Take ``- table: name`` (or a legacy ``- stream: name``) out of ``stores:``."""
    document = _GraphDocument(app_dir)
    stores = document.sequence("stores")
    for index, entry in enumerate(stores):
        if name in (_get(entry, "table"), _get(entry, "stream")):
            del stores[index]
            document.save()
            return
    raise ConfigError(f"no table '{name}' under `stores:` in {document.path}")
