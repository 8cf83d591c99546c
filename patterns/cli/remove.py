"""``patterns remove node|table``: take a node or a table out of graph.yml.

graph.yml is edited as ``create`` edits it (:mod:`patterns.graph.edit`: comments and layout
kept). A node's file stays on disk, and its run history and state stay in the store. A table
that nodes still use is refused (the app would not load); one that holds rows is emptied as
well, after asking (``-y`` skips the question, ``--keep-data`` keeps the rows).
"""

from __future__ import annotations

from pathlib import Path

import click

from patterns.cli.context import (
    APP_REQUIRED,
    STORE_OPTION,
    YES_OPTION,
    AppGroup,
    StoreAt,
    confirm,
    door,
    has_store,
)
from patterns.errors import ConfigError, did_you_mean


@click.group(cls=AppGroup)
def remove() -> None:
    """Take a node or a table out of the app's graph.yml."""


@remove.command("node")
@APP_REQUIRED
@click.argument("node_key", metavar="NODE")
def remove_node(app_dir: Path, node_key: str) -> None:
    """Take NODE (its file, id or title) out of graph.yml; its file is kept."""
    from patterns.cli.context import readable_app
    from patterns.graph.edit import remove_node as unregister

    app = readable_app(app_dir)
    node = app.node(node_key)
    if node.parent is not None:
        raise ConfigError(f"node {node.label} belongs to component or subgraph {node.parent}: "
                          f"remove that node instead")
    unregister(app.root, node.id)
    kept = f"; {node.rel_file} is kept" if node.rel_file else ""
    click.secho(f"removed node {node.label} ({node.id}) from graph.yml{kept}", fg="green")
    tables = [t for t in (*node.writes(), *node.reads())
              if t in {s.name for s in app.stores} and not _users(app.root, t)]
    if tables:
        click.echo(f"table(s) {', '.join(dict.fromkeys(tables))} no longer used by any node: "
                   f"`patterns remove table NAME` takes one out")


@remove.command("table")
@APP_REQUIRED
@click.argument("table_name", metavar="TABLE")
@click.option("--keep-data", is_flag=True, help="Keep the table's rows in the store.")
@YES_OPTION
@STORE_OPTION
def remove_table(app_dir: Path, table_name: str, keep_data: bool, yes: bool,
                 store_path: StoreAt | None) -> None:
    """Take TABLE out of `stores:` in graph.yml, and empty it in the store (asked first).

    Its rows go into a new, empty version; the old rows stay readable with `patterns table
    show --version` while that version is kept."""
    from patterns.cli.context import readable_app
    from patterns.graph.edit import remove_store

    app = readable_app(app_dir)
    names = [s.name for s in app.stores]
    if table_name not in names:
        valid = ", ".join(names) or "none"
        raise ConfigError(f"no table '{table_name}' in graph.yml of app '{app.title}'"
                          f"{did_you_mean(table_name, names)}: its tables are {valid}")
    users = _users(app.root, table_name)
    if users:
        raise ConfigError(f"table '{table_name}' is used by {', '.join(users)}: remove those "
                          f"nodes first (`patterns remove node NODE`), or change them")
    rows = 0 if keep_data or not has_store(app, store_path) else \
        _rows(app, store_path, table_name)
    if rows:
        confirm(yes, f"Remove table {table_name} and empty its {rows} row(s)?")
        with door(app, store_path, write=True) as opened:
            opened.call_when_free("reset_table", name=table_name)
    remove_store(app.root, table_name)
    emptied = f" and emptied its {rows} row(s)" if rows else ""
    click.secho(f"removed table {table_name} from graph.yml{emptied}", fg="green")


def _rows(app: object, store_path: StoreAt | None, table_name: str) -> int:
    from patterns.errors import PatternsError

    with door(app, store_path) as opened:  # type: ignore[arg-type]
        try:
            return int(opened.call("table", name=table_name)["rows"])
        except PatternsError:  # never written: nothing to empty
            return 0


def _users(root: Path, table_name: str) -> list[str]:
    """The nodes of the app (as graph.yml is now) that read or write ``table_name``."""
    from patterns.errors import GraphError
    from patterns.graph.loader import load_app

    try:
        app = load_app(root)
    except GraphError:
        return []
    return [f"node {n.label}" for n in app.nodes
            if table_name in (*n.reads(), *n.writes())]


def register(group: click.Group) -> None:
    group.add_command(remove)
