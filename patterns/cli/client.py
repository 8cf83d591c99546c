"""``patterns trigger``, ``patterns list webhooks``, ``patterns upload``, ``patterns download``:
commands about a served app (they talk to the server, or use the store where they can)."""

from __future__ import annotations

import difflib
import io
import json
import zipfile
from pathlib import Path

import click

from patterns.cli.context import (
    APP_REQUIRED,
    JSON_OPTION,
    STORE_OPTION,
    StoreAt,
    confirm,
    load,
    print_json,
)
from patterns.cli.remote import SERVER_OPTION, Remote, server_for
from patterns.cli.run import parse_params
from patterns.errors import ConfigError

#: The server version a local copy was last downloaded from or uploaded as.
REMOTE_FILE = "remote.json"


@click.command()
@click.argument("args", nargs=-1, metavar="[APP] NODE")
@click.option("--app", "explicit_app", type=click.Path(path_type=Path),
              help="The app folder (default: the one holding NODE, or the current folder).")
@click.option("--node-id", help="The node's id (instead of NODE).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A parameter value for this run (repeatable).")
@STORE_OPTION
@SERVER_OPTION
@JSON_OPTION
def trigger(args: tuple[str, ...], explicit_app: Path | None, node_id: str | None,
            params: tuple[str, ...], store_path: StoreAt | None, server_url: str | None,
            as_json: bool) -> None:
    """Run NODE once now. With a server, the run is queued there (and runs as soon as the node
    is free); without one, it runs here and its output is shown.

    \b
      patterns trigger APP NODE              (NODE: its file, id or title)
      patterns trigger my_app/my_node.py     (the path of the node's file)
      patterns trigger --app my_app --node-id a1b2c3"""
    app_dir, node_key = _app_and_node(args, explicit_app, node_id)
    app = load(app_dir)
    node = app.node(node_key)
    overrides = parse_params(params)
    remote = server_for(app, server_url)
    if remote is not None:
        queued = remote.post(f"/nodes/{node.id}/trigger", json={"parameters": overrides})
        if as_json:
            print_json(queued)
        else:
            click.secho(f"queued a run of {node.label} on {remote.url} "
                        f"(`patterns logs {app.root} --node {node.label} -f` follows it)",
                        fg="green")
        return
    from rich.console import Console

    from patterns.cli.console import ConsoleReporter, print_runs
    from patterns.cli.run import hold_store

    console = Console(stderr=as_json, highlight=False)
    reporter = ConsoleReporter(console, quiet=as_json)
    targets = app.entry_members(node) if node.members else [node]  # a component: its first
    with hold_store(app, store_path, reporter, console) as engine, \
            reporter.live(engine.running_now):  # (hold_store waits for another run)
        records = [engine.run_node(t, "manual", overrides or None)[0] for t in targets]
    if as_json:
        print_json(records[0].to_json() if len(records) == 1 else
                   [r.to_json() for r in records])
    else:
        print_runs(console, records)
    if any(r.status != "succeeded" for r in records):
        raise SystemExit(1)


def _app_and_node(args: tuple[str, ...], explicit_app: Path | None,
                  node_id: str | None) -> tuple[Path, str]:
    """The app folder and node key of ``trigger``'s local and original forms."""
    from patterns.cli.context import nearest_app

    given = [*args, *([node_id] if node_id else [])]
    if len(given) == 2 and explicit_app is None:
        return Path(given[0]), given[1]
    if len(given) != 1:
        raise ConfigError("name one node: `patterns trigger APP NODE`, `patterns trigger "
                          "PATH/TO/node.py` or `patterns trigger --app APP --node-id ID`")
    if explicit_app is not None:
        return explicit_app, given[0]
    path = Path(given[0])
    if node_id is None and path.is_file():
        return nearest_app(path), str(path.resolve())
    return nearest_app(Path.cwd()), given[0]


@click.command("webhooks")
@APP_REQUIRED
@STORE_OPTION
@SERVER_OPTION
@JSON_OPTION
def list_webhooks(app_dir: Path, store_path: StoreAt | None, server_url: str | None,
                  as_json: bool) -> None:
    """The app's webhooks and their URLs (the token in each URL is what grants access)."""
    app = load(app_dir)
    remote = server_for(app, server_url)
    if remote is not None:
        hooks = [{**h, "url": f"{remote.url}{h['path']}"} for h in remote.get("/webhooks")]
    else:
        from patterns.cli.context import door, has_store, open_store
        from patterns.engine.admin import Desk, webhook_tokens
        from patterns.server.hub import slug_of

        nodes = {n.id: n for n in app.nodes if n.kind == "webhook"}
        tokens: dict[str, str] = {}
        if nodes and has_store(app, store_path):
            with door(app, store_path, write=True) as opened:  # through a running engine
                tokens = opened.call("webhook_tokens")
        elif nodes:  # no store yet, so no engine either: make it, with the tokens
            store = open_store(app, store_path)
            try:
                tokens = webhook_tokens(Desk(store, app))
            finally:
                store.close()
        hooks = [{"node_id": i, "table": nodes[i].webhook_table,
                  "path": f"/webhooks/{slug_of(app)}/{t}",
                  "respond": bool(nodes[i].raw.get("respond")), "url": None}
                 for i, t in sorted(tokens.items())]
    if as_json:
        print_json(hooks)
        return
    if not hooks:
        click.secho("the app has no webhooks: add one with `patterns create webhook APP TABLE`",
                    dim=True)
    for hook in hooks:
        where = hook["url"] or f"<server>{hook['path']}"
        kind = " (response webhook)" if hook["respond"] else ""
        click.echo(f"{hook['table']}{kind}: POST {where}")
    if remote is None and hooks:
        click.secho("no server is serving the app: `patterns serve` gives these paths a host",
                    dim=True)


@click.command()
@APP_REQUIRED
@SERVER_OPTION
@click.option("--force", is_flag=True,
              help="Overwrite the server's version even if it changed since yours.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before uploading.")
def upload(app_dir: Path, server_url: str | None, force: bool, yes: bool) -> None:
    """Upload the app to the server as its new version, after showing the differences."""
    from patterns.server.bundle import app_files, zip_app

    app = load(app_dir)  # a local app with problems is refused before anything is sent
    remote = _needs_server(app, server_url)
    theirs, their_version = _download(remote)
    ours = {rel.as_posix(): (app.root / rel).read_bytes() for rel in app_files(app.root)}
    diff = _diff(theirs, ours)
    if not diff:
        click.secho(f"the server already has this version ({their_version})", fg="green")
        return
    click.echo(diff)
    base = _remote_state(app.root).get("version")
    if base is not None and base != their_version and not force:
        raise ConfigError(f"the app on the server changed since you last downloaded or "
                          f"uploaded it (server {their_version}, yours {base}): `patterns "
                          f"download` it first, or upload with --force to overwrite")
    confirm(yes, "upload this version?", default=True)
    # The server refuses if its version moved on since we looked (someone else uploaded).
    params = {"force": "true"} if force else {"base": base or their_version}
    result = remote.request("POST", "/upload", data=zip_app(app.root), params=params).json()
    _save_remote_state(app.root, remote.url, result["version"])
    click.secho(f"uploaded: the server now runs version {result['version']} "
                f"(was {result['previous']})", fg="green")


@click.command()
@click.argument("args", nargs=-1, metavar="[APP] | SLUG [DIR]")
@click.option("--app", "slug", metavar="SLUG",
              help="Fetch the server's app SLUG into DIR (default: ./SLUG), a folder that "
                   "need not hold an app yet.")
@SERVER_OPTION
@click.option("--force", "-f", is_flag=True,
              help="SLUG form: overwrite local files that differ from the server's.")
def download(args: tuple[str, ...], slug: str | None, server_url: str | None,
             force: bool) -> None:
    """Download the server's version of an app.

    \b
      patterns download [APP]            the app in folder APP (default: the app holding
                                         the current folder), from the server serving it;
                                         files that differ are overwritten
      patterns download --app SLUG [DIR] the app SLUG of the server (--server,
      patterns download SLUG [DIR]       PATTERNS_SERVER, else this machine's on port 8000)
                                         into DIR (default: ./SLUG), made if need be; a file
                                         that differs is kept unless --force

    No local file is ever deleted."""
    from patterns.graph.loader import GRAPH_FILE

    if slug is not None:
        if len(args) > 1:
            raise ConfigError("give `patterns download --app SLUG [DIR]`: one folder at most")
        _download_slug(slug, Path(args[0]) if args else Path(slug), server_url, force)
        return
    if len(args) > 2:
        raise ConfigError("give `patterns download [APP]` or `patterns download --app SLUG "
                          "[DIR]`")
    first = Path(args[0]) if args else Path(".")
    if args and (len(args) == 2 or not (first / GRAPH_FILE).is_file()):
        _download_slug(args[0], Path(args[1]) if len(args) == 2 else Path(args[0]),
                       server_url, force)
        return
    from patterns.cli.context import nearest_app

    app = load(nearest_app(first))
    remote = _needs_server(app, server_url)
    theirs, version = _download(remote)
    changed = 0
    for name, data in theirs.items():
        target = _inside(app.root, name)
        if target.exists() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        changed += 1
        click.echo(f"  {name}")
    _save_remote_state(app.root, remote.url, version)
    click.secho(f"downloaded version {version}: {changed} file(s) written", fg="green")


DEFAULT_SERVER = "http://127.0.0.1:8000"


def _download_slug(slug: str, directory: Path, server_url: str | None, force: bool) -> None:
    """The original devkit's form: the app SLUG of a server into DIR."""
    import requests

    from patterns.cli.remote import server_error
    from patterns.server.security import client_token

    url = (server_url or DEFAULT_SERVER).rstrip("/")
    token = client_token(url)
    try:
        response = requests.get(f"{url}/api/v1/apps/{slug}/download", timeout=60,
                                headers={"Authorization": f"Bearer {token}"} if token else {})
    except requests.ConnectionError:
        raise ConfigError(f"no server answers at {url}: start one with `patterns serve`, or "
                          f"name it with --server URL (or PATTERNS_SERVER)") from None
    if response.status_code >= 400:
        raise ConfigError(server_error(response))
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        theirs = {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
    directory.mkdir(parents=True, exist_ok=True)
    targets = {name: _inside(directory, name) for name in theirs}
    kept = [name for name, target in targets.items()
            if target.exists() and target.read_bytes() != theirs[name]]
    if kept and not force:
        raise ConfigError(f"{len(kept)} file(s) in {directory} differ from the server's "
                          f"({', '.join(sorted(kept)[:5])}): nothing was written; give --force "
                          f"to overwrite them")
    for name, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(theirs[name])
    version = response.headers.get("X-App-Version", "")
    _save_remote_state(directory, url, version)
    click.secho(f"downloaded {slug} version {version} into {directory}: {len(theirs)} file(s)",
                fg="green")


def _inside(root: Path, name: str) -> Path:
    """Where a downloaded file goes: inside the app folder, or refused."""
    from pathlib import PurePosixPath

    from patterns.server.bundle import SKIP_DIRS

    parts = PurePosixPath(name).parts
    target = root.joinpath(*parts).resolve()
    if PurePosixPath(name).is_absolute() or ".." in parts or not parts or \
            any(part in SKIP_DIRS for part in parts) or not target.is_relative_to(root.resolve()):
        raise ConfigError(f"the server sent a file outside the app folder ({name!r}); "
                          f"nothing more was written")
    return target


def _needs_server(app: object, server_url: str | None) -> Remote:
    remote = server_for(app, server_url)  # type: ignore[arg-type]
    if remote is None:
        raise ConfigError("no server is serving this app: start one with `patterns serve`, or "
                          "name it with --server URL (or PATTERNS_SERVER)")
    return remote


def _download(remote: Remote) -> tuple[dict[str, bytes], str]:
    response = remote.request("GET", "/download")
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        files = {info.filename: zf.read(info) for info in zf.infolist() if not info.is_dir()}
    return files, response.headers.get("X-App-Version", "")


def _diff(theirs: dict[str, bytes], ours: dict[str, bytes]) -> str:
    out = []
    for name in sorted(set(theirs) | set(ours)):
        old, new = theirs.get(name), ours.get(name)
        if old == new:
            continue
        if old is None:
            out.append(f"+ new file {name}")
        elif new is None:
            out.append(f"- removed {name}")
        else:
            try:
                lines = difflib.unified_diff(
                    old.decode().splitlines(), new.decode().splitlines(),
                    f"server/{name}", f"local/{name}", lineterm="")
                out.extend(lines)
            except UnicodeDecodeError:
                out.append(f"~ changed {name} (binary)")
    return "\n".join(out)


def _remote_state(root: Path) -> dict[str, str]:
    try:
        return dict(json.loads((root / ".patterns" / REMOTE_FILE).read_text()))
    except (OSError, ValueError):
        return {}


def _save_remote_state(root: Path, url: str, version: str) -> None:
    from patterns.private_files import private_dir, write_private

    path = root / ".patterns" / REMOTE_FILE
    private_dir(path.parent)
    write_private(path, json.dumps({"url": url, "version": version}))


def register(group: click.Group) -> None:
    for command in (trigger, upload, download):
        group.add_command(command)
    list_group = group.commands.get("list")
    if isinstance(list_group, click.Group):
        list_group.add_command(list_webhooks)
