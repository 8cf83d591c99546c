"""What CLI commands share: finding the app, reaching its store, printing JSON.

Commands reach the store through :func:`door`: the running engine when one holds it (found
from ``.patterns/engine.json``), else the file itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from patterns.engine.door import Door
    from patterns.graph.model import App
    from patterns.store.duckdb import DuckDBStore
    from patterns.store.model import TableMeta

APP_ARGUMENT = click.argument("app_dir", metavar="[APP]", default=".", required=False,
                              type=click.Path(file_okay=True, path_type=Path))
#: The app folder when more arguments follow it (so it cannot be left out).
APP_REQUIRED = click.argument("app_dir", metavar="APP",
                              type=click.Path(file_okay=True, path_type=Path))
STORE_OPTION = click.option(
    "--store", "store_path", type=click.Path(path_type=Path), envvar="PATTERNS_STORE",
    help="The store file (default: APP/.patterns/store.duckdb; env PATTERNS_STORE).")
#: For commands that may also ask a server on another machine (over its REST API).
SERVER_OPTION = click.option(
    "--server", "server_url", envvar="PATTERNS_SERVER", metavar="URL",
    help="Ask the server at this URL over its API (env PATTERNS_SERVER). Default: this "
         "machine's store, through the engine holding it (`patterns serve` or a `patterns "
         "run`) if one runs.")
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def load(app_dir: Path, params: dict[str, str] | None = None) -> App:
    from patterns.graph.loader import load_app

    return load_app(app_dir, param_overrides=params)


def store_path_for(app: App, store_path: Path | None) -> Path:
    from patterns.engine.engine import default_store_path

    return store_path or default_store_path(app)


def open_store(app: App, store_path: Path | None, *, read_only: bool = False) -> DuckDBStore:
    from patterns.errors import StoreError
    from patterns.store.duckdb import DuckDBStore

    path = store_path_for(app, store_path)
    if read_only and not path.exists():
        raise StoreError(f"the app has no store yet ({path}): run it first with "
                         f"`patterns run {app.root}`")
    return DuckDBStore(path, read_only=read_only)


def print_json(doc: Any) -> None:
    from patterns.graph.manifest import jsonable

    sys.stdout.write(json.dumps(jsonable(doc), indent=2, default=str) + "\n")


def existing_store(app: App, store_path: Path | None, *, read_only: bool = True) -> DuckDBStore:
    """Open the app's store, which must exist already (a command never creates one)."""
    from patterns.errors import StoreError

    path = store_path_for(app, store_path)
    if not path.exists():
        raise StoreError(f"the app has no store yet ({path}): run it first with "
                         f"`patterns run {app.root}`")
    return open_store(app, path, read_only=read_only)


def known_table(app: App, store: DuckDBStore, name: str) -> TableMeta:
    """The store's table ``name``; an error naming the tables there if it has none."""
    from patterns.engine.admin import Desk
    from patterns.engine.admin import known_table as known

    return known(Desk(store, app), name)


@contextmanager
def door(app: App, store_path: Path | None, *, write: bool = False) -> Iterator[Door]:
    """The app's store, which must exist already: through the engine holding it (`patterns
    serve` or a `patterns run`), else the file opened here (read-only unless ``write``)."""
    from patterns.engine.door import open_door
    from patterns.errors import StoreError

    path = store_path_for(app, store_path)
    if not path.exists():
        raise StoreError(f"the app has no store yet ({path}): run it first with "
                         f"`patterns run {app.root}`")
    opened = open_door(path, app, write=write)
    try:
        yield opened
    finally:
        opened.close()


def call_when_free(opened: Door, action: str, /, **args: Any) -> Any:
    """A reset through ``opened``: while a run it concerns is in progress, say so (on stderr)
    and ask again until it has ended."""
    import time

    said = False
    while True:
        result = opened.call(action, **args)
        busy = result.get("busy") if isinstance(result, dict) else None
        if not busy:
            return result
        if not said:
            click.secho(f"waiting for run {busy['run']} of node {busy['node']} to end...",
                        dim=True, err=True)
            said = True
        time.sleep(0.2)


def confirm(yes: bool, question: str) -> None:
    """Ask before a destructive change unless ``--yes`` was given; abort (exit 1) on no."""
    if not yes:
        click.confirm(question, abort=True)


YES_OPTION = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
