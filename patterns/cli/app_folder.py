"""How every command finds its app: an optional APP, else the app holding the current folder.

The app is the nearest folder upwards with a ``graph.yml`` (as git finds ``.git``), from APP
when it is given (so ``patterns run .`` works from a subfolder) or from the current folder.
A command whose APP is followed by more arguments (``table show [APP] TABLE``) takes APP only
when all of them are given: ``patterns table show orders`` inside the app is the app's table
``orders``. Read-only commands load a broken app as far as its store is concerned
(:func:`readable_app`): they say in one line that graph.yml has problems and go on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from patterns.graph.model import App


def nearest_app(start: Path) -> Path:
    """The app folder holding ``start`` (a file or folder): the nearest folder upwards with a
    graph.yml, as the original devkit found it."""
    from patterns.errors import ConfigError
    from patterns.graph.loader import GRAPH_FILE

    if not start.exists():
        raise ConfigError(f"{start} does not exist: give the app's folder, or run the command "
                          f"inside the app")
    here = start.resolve()
    if here.is_file() and here.name in (GRAPH_FILE, "graph.yaml"):
        return here.parent
    for folder in [here, *here.parents] if here.is_dir() else here.parents:
        if (folder / GRAPH_FILE).is_file():
            return folder
    raise ConfigError(f"{start} is not inside an app (no {GRAPH_FILE} in it or any folder "
                      f"above it): give the app folder, or run the command inside the app "
                      f"(`patterns create app DIR` makes one)")


def _app_folder(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
    """APP's value: the app holding the folder given, or the current folder."""
    if ctx.resilient_parsing:  # shell completion: find nothing
        return value or Path(".")
    return nearest_app(value if value is not None else Path.cwd())


#: An optional APP (default: the app holding the current folder).
APP_ARGUMENT = click.argument("app_dir", metavar="[APP]", required=False, callback=_app_folder,
                              type=click.Path(path_type=Path))
#: An optional APP before more arguments (given only when they all are; see AppCommand).
APP_REQUIRED = APP_ARGUMENT


class AppCommand(click.Command):
    """A command whose leading APP may be left out when arguments follow it: when the
    arguments given are one short, they are the ones after APP."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if _app_left_out(self, ctx, args):
            args = [".", *args]  # the app holding the current folder
        return super().parse_args(ctx, args)


class AppGroup(click.Group):
    """A group whose commands are :class:`AppCommand`s."""

    command_class = AppCommand


def _app_left_out(command: click.Command, ctx: click.Context, args: list[str]) -> bool:
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if len(arguments) < 2 or arguments[0].name != "app_dir" or \
            any(h in args for h in ctx.help_option_names):
        return False
    try:
        values, _, _ = command.make_parser(ctx).parse_args(args=list(args))
    except click.UsageError:
        return False  # the real parse reports it
    return any(arg.required and _unset(values.get(arg.name)) for arg in arguments[1:])


def _unset(value: Any) -> bool:
    return value is None or type(value).__name__ == "Sentinel" or value == ()


def readable_app(app_dir: Path) -> App:
    """The app, for a command that only reads its store: when graph.yml has problems, one
    line on stderr says so and a stand-in is returned that knows the app's folder, title
    and the nodes graph.yml names (ids, files and titles as written)."""
    from patterns.errors import GraphError
    from patterns.graph.loader import load_app

    try:
        return load_app(app_dir)
    except GraphError as exc:
        count = len(exc.problems)
        click.secho(f"warning: graph.yml has {count} problem{'s' if count != 1 else ''} "
                    f"(`patterns validate` lists them); showing what the store holds",
                    fg="yellow", err=True)
        return stand_in_app(app_dir)


def stand_in_app(app_dir: Path) -> App:
    """An App with what can be read of a graph.yml that does not load: its title, slug,
    the ids (written, or derived from the file as the loader derives them) and files of its
    functions and the names of its stores."""
    import yaml

    from patterns.graph.ids import derived_id
    from patterns.graph.loader import GRAPH_FILE, find_graph_file, slugify
    from patterns.graph.model import App, Node, NodeInterface, Settings, StoreDecl

    graph_file = find_graph_file(app_dir)
    root = graph_file.parent
    try:
        doc = yaml.safe_load(graph_file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        doc = None
    doc = doc if isinstance(doc, dict) else {}
    title = str(doc.get("title") or root.name)
    nodes = []
    for entry in _entries(doc.get("functions")):
        rel = entry.get("node_file") if isinstance(entry.get("node_file"), str) else None
        source = rel or entry.get("webhook")
        node_id = entry.get("id") or (derived_id(str(source)) if source else None)
        if not isinstance(node_id, str):
            continue
        nodes.append(Node(
            id=node_id, kind="python", title=str(entry.get("title") or rel or node_id),
            file=root / rel if rel else None, rel_file=rel, line=0, trigger=None, inputs={},
            outputs={}, parameter_values={}, interface=NodeInterface(), settings=Settings(),
            webhook_table=entry.get("webhook") if isinstance(entry.get("webhook"), str)
            else None))
    stores = [StoreDecl(name=str(e.get("table") or e.get("stream")), id=None, line=0)
              for e in _entries(doc.get("stores")) if e.get("table") or e.get("stream")]
    slug = str(doc.get("slug") or slugify(title) or slugify(root.name) or "app")
    return App(root=root, graph_file=root / GRAPH_FILE, title=title, slug=slug,
               description_file=None, requirements_file=None, settings=Settings(),
               nodes=tuple(nodes), stores=tuple(stores))


def _entries(value: Any) -> list[dict[str, Any]]:
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []
