"""What CLI commands share: finding the app, opening its store, printing JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
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
    from patterns.errors import ConfigError

    meta = store.table(name)
    if meta is not None:
        return meta
    if any(s.name == name for s in app.stores):
        raise ConfigError(f"table '{name}' has no data yet: no run has written it; "
                          f"run the app first with `patterns run {app.root}`")
    names = ", ".join(t.name for t in store.tables()) or "none yet"
    raise ConfigError(f"no table '{name}' in the store of app '{app.title}': "
                      f"its tables are {names}")


def confirm(yes: bool, question: str) -> None:
    """Ask before a destructive change unless ``--yes`` was given; abort (exit 1) on no."""
    if not yes:
        click.confirm(question, abort=True)


YES_OPTION = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
