"""``patterns create app|node|table|webhook|secret`` and ``patterns list secrets``.

Everything that adds to an app edits graph.yml through :mod:`patterns.graph.edit`, which keeps
the user's comments and layout. Secret values are never printed: not when set, not when listed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import IO

import click

from patterns.cli.context import APP_REQUIRED, JSON_OPTION, AppGroup, print_json
from patterns.errors import ConfigError

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@click.group(cls=AppGroup)
def create() -> None:
    """Create an app, or add a node, table, webhook or secret."""


@create.command("app")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--title", help="The app's title (default: the folder's name).")
def create_app(directory: Path, title: str | None) -> None:
    """Create the folder DIR holding a new app's graph.yml."""
    from patterns.graph.edit import create_app as make

    graph_file = make(directory, title)
    click.secho(f"created {graph_file}", fg="green")
    click.echo(f"next, in the app's folder (cd {directory}):\n"
               "  patterns create node hello.py   # a node writing a table\n"
               "  patterns run                    # run it\n"
               "  patterns table list             # see what it wrote")


NODE_TYPES = ("function", "table", "webhook", "component")


@create.command("node")
@click.argument("args", nargs=-1, metavar="[APP] FILE|NAME")
@click.option("--app", "-a", "explicit_app", type=click.Path(path_type=Path),
              help="The app folder (default: the one holding FILE, or the current folder).")
@click.option("--type", "-t", "node_type", type=click.Choice(NODE_TYPES), default="function",
              show_default=True, help="function: a .py/.sql file or a sub/graph.yml; table "
                                      "NAME; webhook TABLE; component org/name@vN.")
@click.option("--title", "-n", help="The node's title (default: from its file).")
@click.option("--id", "node_id", help="The node's id (default: 8 random letters and digits).")
@click.option("--trigger", metavar="CRON|manual",
              help='When the node runs on its own: a cron string ("0 * * * *") or manual.')
@click.option("--component", "-c", hidden=True, help="Same as --type component.")
def create_node(args: tuple[str, ...], explicit_app: Path | None, node_type: str,
                title: str | None, node_id: str | None, trigger: str | None,
                component: str | None) -> None:
    """Add a node: a Python or SQL file written from a template, a subgraph, a table, a
    webhook or a component.

    \b
      patterns create node APP FILE.py|FILE.sql     (the app, then the file in it)
      patterns create node nodes/clean.py           (the app holding the file)
      patterns create node --title 'My node' my_app/ingest.py
      patterns create node --type table my_table
      patterns create node --type webhook my_events
      patterns create node --type component patterns/date-table@v1

    A .py node appends a record to a table, a .sql node's SELECT makes its output table; it
    is registered under `functions:` in graph.yml with a new id, and its table under
    `stores:`. A file that exists already is registered as it is (never overwritten), with
    the tables it declares."""
    if component:
        node_type, args = "component", (*args, component)
    if len(args) not in (1, 2):
        raise ConfigError("give what to create: `patterns create node FILE.py` (in the app's "
                          "folder), `patterns create node APP FILE.py`, or --type "
                          "table|webhook|component NAME")
    target = args[-1]
    if len(args) == 2:
        app_dir = Path(args[0])
    elif explicit_app is not None:
        app_dir = explicit_app
    else:
        from patterns.cli.context import nearest_app

        start = Path(target).parent if node_type == "function" else Path.cwd()
        app_dir = nearest_app(start if start.exists() else Path.cwd())
    if node_type == "function":
        _create_function(app_dir, target, node_id, trigger, title)
    elif title and node_type == "table":
        raise ConfigError("a table has no title: give its name only")
    elif node_type == "table":
        create_table.callback(app_dir, target)  # type: ignore[misc]
    elif node_type == "webhook":
        create_webhook.callback(app_dir, target)  # type: ignore[misc]
    else:
        _create_component(app_dir, target, title, node_id)


def _create_component(app_dir: Path, uses: str, title: str | None, node_id: str | None) -> None:
    from patterns.graph.components import resolve
    from patterns.graph.edit import add_store, add_uses
    from patterns.graph.loader import find_graph_file

    root = find_graph_file(app_dir).parent
    from patterns.graph.components import read_manifest_head
    from patterns.graph.nesting import exposed

    found = resolve(uses, root)  # a component that is not installed is refused here
    new_id = add_uses(root, uses, title=title, id=node_id)
    exposes = read_manifest_head(found.manifest).get("exposes")
    have = _graph_names(root, "stores", "table", "stream")
    added = [name for kind in ("inputs", "outputs") for name in exposed(exposes, kind)
             if name not in have]
    for name in added:  # bound by name until the node maps them elsewhere
        add_store(root, name)
    click.secho(f"added component {uses} (node {new_id}, {found.ref} from {found.source})"
                + (f" and table(s) {', '.join(added)}" if added else ""), fg="green")
    click.echo("next: map its inputs/outputs and parameter_values in graph.yml")


def _create_function(app_dir: Path, file: str, node_id: str | None, trigger: str | None,
                     title: str | None) -> None:
    from patterns.graph.edit import add_node, add_store
    from patterns.graph.loader import find_graph_file

    root = find_graph_file(app_dir).parent
    path = _node_path(root, file)
    rel = path.relative_to(root).as_posix()
    if path.name in ("graph.yml", "graph.yaml"):
        _create_subgraph(root, path, rel, node_id, title)
        return
    if path.suffix not in (".py", ".sql"):
        raise ConfigError(f"{file} is not a .py or .sql file: `patterns create node` writes "
                          f"Python and SQL nodes (name it {Path(file).stem}.py or .sql) or a "
                          f"subgraph (a sub/graph.yml)")
    if rel in _graph_names(root, "functions", "node_file"):
        raise ConfigError(f"{rel} is already a node of this app: pick another file name")
    if path.exists():
        _register_existing(app_dir, root, rel, node_id, trigger, title)
        return
    table = re.sub(r"\W+", "_", path.stem).strip("_").lower() or "node"
    table = f"{table}_records"
    path.parent.mkdir(parents=True, exist_ok=True)
    sql = path.suffix == ".sql"
    path.write_text(_template(table, rel, "node.sql" if sql else "node.py"), encoding="utf-8")
    try:
        new_id = add_node(root, rel, id=node_id, trigger=trigger, title=title,
                          outputs={"output_table": table} if sql else None)
    except BaseException:
        path.unlink()
        raise
    if table not in _graph_names(root, "stores", "table", "stream"):
        add_store(root, table)
    click.secho(f"created {rel} (node {new_id}, writes table {table})", fg="green")
    click.echo(f"next: patterns run {app_dir} --node {rel}")


def _register_existing(app_dir: Path, root: Path, rel: str, node_id: str | None,
                       trigger: str | None, title: str | None) -> None:
    """Register a node file that exists already, with the tables it declares that graph.yml
    does not have yet."""
    from patterns.graph.edit import add_node, add_store
    from patterns.graph.interface import discover_python
    from patterns.graph.sql_interface import discover_sql

    sql = rel.endswith(".sql")
    interface, _ = (discover_sql if sql else discover_python)(root / rel, rel)
    outputs = None
    ports = [t.port for t in interface.tables]
    if sql and "output_table" in ports:  # a bare SELECT: its table is named after the file
        table = re.sub(r"\W+", "_", Path(rel).stem).strip("_").lower() or "node"
        outputs = {"output_table": table}
        ports = [table if p == "output_table" else p for p in ports]
    new_id = add_node(root, rel, id=node_id, trigger=trigger, title=title, outputs=outputs)
    have = _graph_names(root, "stores", "table", "stream")
    added = [p for p in ports if p not in have]
    for name in dict.fromkeys(added):
        add_store(root, name)
    tables = f"; added table(s) {', '.join(dict.fromkeys(added))}" if added else ""
    click.secho(f"registered {rel} (node {new_id}){tables}", fg="green")
    click.echo(f"next: patterns run {app_dir} --node {rel}")


def _create_subgraph(root: Path, path: Path, rel: str, node_id: str | None,
                     title: str | None) -> None:
    from patterns.graph.edit import add_node, create_app

    if path.exists():
        raise ConfigError(f"{path} already exists: add it to graph.yml under `functions:` as "
                          f"`- node_file: {rel}`")
    create_app(path.parent, title or path.parent.name)
    try:
        new_id = add_node(root, rel, id=node_id, title=title)
    except BaseException:
        path.unlink()
        raise
    click.secho(f"created subgraph {rel} (node {new_id}); add its nodes with `patterns create "
                f"node {path.parent}/NODE.py` and list what it shares under `exposes:`",
                fg="green")


def _node_path(root: Path, file: str) -> Path:
    """FILE as given from the current folder if that is inside the app, else from the app."""
    given = Path(file)
    if given.is_absolute():
        path = given.resolve()
    else:
        here = (Path.cwd() / given).resolve()
        path = here if here.is_relative_to(root) else (root / given).resolve()
    if not path.is_relative_to(root):
        raise ConfigError(f"{file} is outside the app folder {root}: node files live in it")
    return path


def _template(table: str, rel: str, name: str) -> str:
    from importlib.resources import files

    text = files("patterns.cli").joinpath("templates", name).read_text(encoding="utf-8")
    return text.replace("__TABLE__", table).replace("__FILE__", rel)


def _graph_names(root: Path, section: str, *keys: str) -> set[str]:
    """The values of ``keys`` in the entries of ``section`` of graph.yml."""
    import yaml

    from patterns.graph.loader import GRAPH_FILE

    try:
        doc = yaml.safe_load((root / GRAPH_FILE).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot edit {root / GRAPH_FILE}: it is not valid YAML ({exc})"
                          ) from None
    entries = (doc.get(section) if isinstance(doc, dict) else None) or []
    return {str(e[k]) for e in entries if isinstance(e, dict) for k in keys if e.get(k)}


@create.command("table")
@APP_REQUIRED
@click.argument("name")
def create_table(app_dir: Path, name: str) -> None:
    """Add the table NAME under `stores:` in graph.yml."""
    from patterns.graph.edit import add_store
    from patterns.graph.loader import find_graph_file

    if not _TABLE_NAME.match(name):
        raise ConfigError(f"table name {name!r} is not valid: use letters, digits and '_', "
                          f"starting with a letter or '_'")
    add_store(find_graph_file(app_dir).parent, name)
    click.secho(f"added table {name}; nodes use it with Table({name!r}) or "
                f"Table({name!r}, \"w\")", fg="green")


@create.command("webhook")
@APP_REQUIRED
@click.argument("table_name", metavar="TABLE")
def create_webhook(app_dir: Path, table_name: str) -> None:
    """Add a webhook that stores each POSTed JSON object as a record of TABLE."""
    from patterns.graph.edit import add_webhook
    from patterns.graph.loader import find_graph_file

    if not _TABLE_NAME.match(table_name):
        raise ConfigError(f"table name {table_name!r} is not valid: use letters, digits and "
                          f"'_', starting with a letter or '_'")
    node_id = add_webhook(find_graph_file(app_dir).parent, table_name)
    click.secho(f"added webhook {node_id} writing table {table_name}; `patterns serve` gives "
                f"it a URL", fg="green")


@create.command("secret")
@click.argument("name")
@click.argument("value", required=False)
@click.option("--stdin", "from_stdin", is_flag=True,
              help="Read the value from standard input (one trailing newline dropped).")
@click.option("--from-file", "from_file", type=click.File("r", encoding="utf-8"),
              metavar="FILE", help="Read the value from FILE (one trailing newline dropped).")
@click.option("--server", "server_url", envvar="PATTERNS_SERVER", metavar="URL",
              help="Store it on this server instead (env PATTERNS_SERVER).")
def create_secret(name: str, value: str | None, from_stdin: bool, from_file: IO[str] | None,
                  server_url: str | None) -> None:
    """Store a secret; its value is never shown.

    VALUE is asked for (hidden) when left out, or read with --stdin or --from-file FILE, so
    it stays out of the shell's history. graph.yml refers to the secret as ${{ NAME }} in
    parameter_values; a connection is a secret named connection.NAME holding a JSON object
    of credentials. Secrets live encrypted in $PATTERNS_HOME (default ~/.patterns)."""
    from patterns.cli.context import can_ask
    from patterns.engine.secrets import SecretStore

    value = _secret_value(name, value, from_stdin, from_file, can_ask())
    if server_url:
        _set_remote_secret(server_url, name, value)
        click.secho(f"secret {name} saved on {server_url}; use it in parameter_values as "
                    f"${{{{ {name} }}}}", fg="green")
        return
    store = SecretStore()
    replaced = name in store.names()
    store.set(name, value)
    verb = "replaced" if replaced else "saved"
    click.secho(f"secret {name} {verb} in {store.home}; use it in parameter_values as "
                f"${{{{ {name} }}}}", fg="green")


def _secret_value(name: str, value: str | None, from_stdin: bool, from_file: IO[str] | None,
                  terminal: bool) -> str:
    """The secret's value from exactly one place: VALUE, --stdin, --from-file or a prompt."""
    given = [v for v, on in (("VALUE", value is not None), ("--stdin", from_stdin),
                             ("--from-file", from_file is not None)) if on]
    if len(given) > 1:
        raise ConfigError(f"give the value of {name} one way, not {' and '.join(given)}")
    if from_stdin or from_file is not None:
        text: str = (sys.stdin if from_file is None else from_file).read()
        text = text[:-1] if text.endswith("\n") else text
        text = text[:-1] if text.endswith("\r") else text
        if not text:
            where = "standard input" if from_stdin else f"{getattr(from_file, 'name', 'FILE')}"
            raise ConfigError(f"{where} is empty: nothing was saved for secret {name}")
        return text
    if value is not None:
        return value
    if terminal:
        return str(click.prompt(f"value of {name}", hide_input=True))
    line = sys.stdin.readline() if sys.stdin is not None else ""  # a value piped in
    if not line.strip("\r\n"):
        raise ConfigError(f"there is no terminal to ask for the value of {name} on: pipe it "
                          f"in with `--stdin`, or give `--from-file FILE`")
    return line.rstrip("\r\n")


def _set_remote_secret(server_url: str, name: str, value: str) -> None:
    import requests

    from patterns.cli.remote import server_error
    from patterns.server.security import client_token

    token = client_token(server_url)
    try:
        response = requests.put(f"{server_url.rstrip('/')}/api/v1/secrets/{name}",
                                json={"value": value}, timeout=30,
                                headers={"Authorization": f"Bearer {token}"} if token else {})
    except requests.ConnectionError:
        raise ConfigError(f"no server answers at {server_url}") from None
    if response.status_code >= 400:
        raise ConfigError(server_error(response))


@click.group("list", cls=AppGroup)
def list_group() -> None:
    """List what Patterns keeps outside apps."""


@list_group.command("secrets")
@JSON_OPTION
def list_secrets(as_json: bool) -> None:
    """The names of the stored secrets (never their values)."""
    from patterns.engine.secrets import SecretStore

    names = SecretStore().names()
    if as_json:
        print_json(names)
    elif not names:
        click.secho("no secrets yet: add one with `patterns create secret NAME VALUE`", dim=True)
    else:
        click.echo("\n".join(names))


def register(group: click.Group) -> None:
    for command in (create, list_group):
        group.add_command(command)
