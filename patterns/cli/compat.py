"""The original devkit's commands, where they mean something locally.

``list apps|nodes|versions``, ``delete`` and ``config`` do the local equivalent of what the
hosted product's did; ``login``, ``logout`` and ``list organizations`` belong to the hosted
service and print one line saying what to use instead. (``create node FILE --type``,
``trigger PATH``, ``download SLUG DIR`` and ``list webhooks|secrets`` live with the commands
they extend.)
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import click

from patterns.cli.context import APP_ARGUMENT, JSON_OPTION, confirm, load, print_json
from patterns.errors import ConfigError

HOSTED = ("there are no accounts or organizations here: Patterns runs locally; `patterns "
          "serve` starts the server and the CLI uses its token from $PATTERNS_HOME/server-token "
          "(PATTERNS_AUTH_TOKEN for a server on another machine)")


@click.command()
def login() -> None:
    """(Hosted service only.) Says what to use instead."""
    click.echo(f"patterns login: {HOSTED}")


@click.command()
def logout() -> None:
    """(Hosted service only.) Says what to use instead."""
    click.echo(f"patterns logout: {HOSTED}")


@click.command("organizations")
@JSON_OPTION
def list_organizations(as_json: bool) -> None:
    """(Hosted service only.) Says what to use instead."""
    if as_json:
        print_json([])
        return
    click.echo("patterns list organizations: organizations belong to the hosted service; "
               "here apps are folders: `patterns list apps` lists them")


@click.command("apps")
@click.option("--server", "server_url", envvar="PATTERNS_SERVER", metavar="URL",
              help="List the apps this server serves (env PATTERNS_SERVER).")
@JSON_OPTION
def list_apps(server_url: str | None, as_json: bool) -> None:
    """The apps the server serves (--server, else this machine's on port 8000 if it runs),
    else the apps in the current folder and its subfolders."""
    rows = _served_apps(server_url)
    if rows is None:
        rows = _local_apps(Path.cwd())
    if as_json:
        print_json(rows)
    elif not rows:
        click.secho("no apps here: `patterns create app DIR` makes one", dim=True)
    for row in [] if as_json else rows:
        where = row.get("url") or row["root"]
        click.echo(f"{row['slug']}\t{row['title']}\t{row['nodes']} node(s)\t{where}")


def _served_apps(server_url: str | None) -> list[dict[str, Any]] | None:
    import requests

    from patterns.cli.client import DEFAULT_SERVER
    from patterns.cli.remote import server_error
    from patterns.server.security import client_token

    url = (server_url or DEFAULT_SERVER).rstrip("/")
    token = client_token(url)
    try:
        response = requests.get(f"{url}/api/v1/apps", timeout=10,
                                headers={"Authorization": f"Bearer {token}"} if token else {})
    except requests.RequestException:
        if server_url:
            raise ConfigError(f"no server answers at {url}: start it with `patterns serve`, "
                              f"or leave out --server / PATTERNS_SERVER") from None
        return None
    if response.status_code >= 400:
        if not server_url:
            return None  # something else listens there
        raise ConfigError(server_error(response))
    return [{**app, "url": f"{url}/api/v1/apps/{app['slug']}"} for app in response.json()]


def _local_apps(folder: Path) -> list[dict[str, Any]]:
    from patterns.errors import GraphError
    from patterns.graph.loader import GRAPH_FILE, load_app, slugify

    if (folder / GRAPH_FILE).is_file():  # inside an app: it (its folders are its own)
        candidates = [folder]
    else:
        candidates = sorted(p for p in folder.iterdir() if p.is_dir())
    rows = []
    for root in candidates:
        if not (root / GRAPH_FILE).is_file():
            continue
        try:
            app = load_app(root)
            rows.append({"slug": app.slug, "title": app.title, "root": str(app.root),
                         "nodes": len([n for n in app.nodes if n.parent is None])})
        except GraphError as error:
            rows.append({"slug": slugify(root.name), "title": root.name, "root": str(root),
                         "nodes": 0, "problems": len(error.problems)})
    return rows


@click.command("nodes")
@APP_ARGUMENT
@JSON_OPTION
def list_nodes(app_dir: Path, as_json: bool) -> None:
    """The app's nodes: id, kind, title and file (the nodes of a component or subgraph
    indented under it)."""
    app = load(app_dir)
    rows = [{"id": n.id, "kind": n.kind, "title": n.title,
             "file": n.rel_file or n.label, "trigger": n.trigger, "inside": n.parent}
            for n in app.nodes]
    if as_json:
        print_json(rows)
        return
    depth: dict[str, int] = {}
    for row in rows:
        level = depth[str(row["id"])] = depth.get(str(row["inside"] or ""), -1) + 1
        indent = "  " * level
        trigger = f"\t{row['trigger']}" if row["trigger"] else ""
        click.echo(f"{indent}{row['id']}\t{row['kind']}\t{row['title']}\t{row['file']}{trigger}")


@click.command("versions")
@APP_ARGUMENT
@JSON_OPTION
def list_versions(app_dir: Path, as_json: bool) -> None:
    """The app's versions: the current one (a hash of its files) and those a server kept
    when new ones were uploaded (APP/.patterns/versions)."""
    import json

    from patterns.server.bundle import app_version

    app = load(app_dir)
    rows = [{"version": app_version(app.root), "current": True, "saved_at": None}]
    kept = app.root / ".patterns" / "versions"
    for path in sorted(kept.glob("*.zip"), key=lambda p: p.stat().st_mtime, reverse=True) \
            if kept.is_dir() else []:
        saved = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).isoformat()
        rows.append({"version": path.stem, "current": False, "saved_at": saved})
    try:
        remote = json.loads((app.root / ".patterns" / "remote.json").read_text())
    except (OSError, ValueError):
        remote = {}
    if as_json:
        print_json({"versions": rows, "server": remote or None})
        return
    for row in rows:
        note = "current" if row["current"] else f"replaced {row['saved_at']}"
        click.echo(f"{row['version']}\t{note}")
    if remote:
        click.secho(f"last downloaded from or uploaded to {remote.get('url')}: version "
                    f"{remote.get('version')}", dim=True)


@click.command()
@APP_ARGUMENT
@click.option("--force", "-f", is_flag=True, help="Do not ask first.")
def delete(app_dir: Path, force: bool) -> None:
    """Delete the app's data on this machine (its tables, runs and state, in APP/.patterns);
    its files are kept, as the original's `delete` kept local files."""
    from patterns.engine.engine import default_store_path
    from patterns.engine.engine_file import running_engine
    from patterns.server.serve import running_server

    app = load(app_dir)
    data = app.root / ".patterns"
    if running_server(app.root) is not None or running_engine(default_store_path(app)):
        raise ConfigError(f"the app is running (`patterns serve` or `patterns run`): stop it "
                          f"before deleting its data in {data}")
    if not data.exists():
        click.secho(f"the app has no data to delete ({data} does not exist)", dim=True)
        return
    confirm(force, f"delete every table, run and state of app '{app.title}' ({data})?",
            flag="--force")
    shutil.rmtree(data)
    click.secho(f"deleted the data of app '{app.title}'; its files are kept", fg="green")


@click.command()
@click.option("--organization", "-o", help="(Hosted service only.)")
@click.option("--verbose", "-v", is_flag=True, help="Also the server's address and token file.")
@JSON_OPTION
def config(organization: str | None, verbose: bool, as_json: bool) -> None:
    """Where Patterns keeps what it keeps outside apps (secrets, components, the server's
    token), from $PATTERNS_HOME (default ~/.patterns)."""
    from patterns.cli.client import DEFAULT_SERVER
    from patterns.engine.secrets import patterns_home
    from patterns.graph.components import components_home

    if organization:
        click.echo("patterns config --organization: organizations belong to the hosted "
                   "service; nothing was set (apps here are folders)")
        return
    home = patterns_home()
    rows: dict[str, Any] = {"patterns home": str(home),
                            "components": str(components_home()),
                            "secrets": str(home / "secrets.enc")}
    if verbose:
        rows["server"] = os.environ.get("PATTERNS_SERVER") or DEFAULT_SERVER
        rows["server token"] = str(home / "server-token")
    if as_json:
        print_json(rows)
        return
    for key, value in rows.items():
        click.echo(f"{key}: {value}")


def register(group: click.Group) -> None:
    for command in (login, logout, delete, config):
        group.add_command(command)
    list_group = group.commands.get("list")
    if isinstance(list_group, click.Group):
        for sub in (list_apps, list_nodes, list_versions, list_organizations):
            list_group.add_command(sub)
