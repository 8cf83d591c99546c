"""What CLI commands share: finding the app, reaching its store, printing JSON.

Commands reach the store through :func:`door`: the running engine when one holds it (found
from ``.patterns/engine.json``), else the file itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from patterns.cli.app_folder import (
    APP_ARGUMENT,
    APP_REQUIRED,
    AppGroup,
    nearest_app,
    readable_app,
)

__all__ = ["APP_ARGUMENT", "APP_REQUIRED", "AppGroup", "nearest_app", "readable_app"]

if TYPE_CHECKING:
    import pyarrow as pa

    from patterns.engine.admin import Scan
    from patterns.engine.door import Door
    from patterns.graph.model import App
    from patterns.store.interface import Store
    from patterns.store.model import TableMeta

T = TypeVar("T")
#: Where a command's store is: a file, or a database server's URL.
StoreAt = Path | str

def _store_location(ctx: click.Context, param: click.Parameter, value: str | None
                    ) -> StoreAt | None:
    """``--store``: a file path or ``duckdb://PATH`` (a Path), or a PostgreSQL URL (kept as
    text; see :func:`patterns.store.open_store`)."""
    if value is None:
        return None
    scheme, sep, rest = value.partition("://")
    if not sep:
        return Path(value)
    if scheme.lower() == "duckdb":
        return Path(rest)
    from patterns.store import SCHEMES

    if scheme.lower() not in ("postgresql", "postgres"):
        raise click.BadParameter(f"unknown store {value!r}: give a file path, or a URL "
                                 f"{' or '.join(SCHEMES)}")
    return value


STORE_OPTION = click.option(
    "--store", "store_path", envvar="PATTERNS_STORE", metavar="PATH|URL",
    callback=_store_location,
    help="The store: a file path, duckdb://PATH or postgresql://USER:PASSWORD@HOST:PORT/DB "
         "(default: APP/.patterns/store.duckdb; env PATTERNS_STORE).")
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


def store_path_for(app: App, store_path: StoreAt | None) -> Path:
    """Where the app's engine announces itself and keeps its live log: beside the store
    file, or (a database server's store) the app's own ``.patterns`` folder."""
    from patterns.engine.engine import default_store_path

    if isinstance(store_path, str):
        return app.root / ".patterns" / "store.duckdb"
    return store_path or default_store_path(app)


def store_at(app: App, store_path: StoreAt | None) -> StoreAt:
    """The store to open: the URL given, else the file."""
    return store_path if isinstance(store_path, str) else store_path_for(app, store_path)


def has_store(app: App, store_path: StoreAt | None) -> bool:
    """Whether the store exists already (a server's store is asked when opened)."""
    return isinstance(store_path, str) or store_path_for(app, store_path).exists()


def _no_store_yet(app: App, store_path: StoreAt | None) -> None:
    from patterns.errors import StoreError

    if not has_store(app, store_path):
        raise StoreError(f"the app has no store yet ({store_path_for(app, store_path)}): run "
                         f"it first with `patterns run {app.root}`")


def open_store(app: App, store_path: StoreAt | None, *, read_only: bool = False) -> Store:
    from patterns.store import open_store as open_any

    if read_only:
        _no_store_yet(app, store_path)
    return open_any(store_at(app, store_path), read_only=read_only)


def print_json(doc: Any) -> None:
    from patterns.graph.manifest import jsonable

    sys.stdout.write(json.dumps(jsonable(doc), indent=2, default=str) + "\n")


def existing_store(app: App, store_path: StoreAt | None, *, read_only: bool = True) -> Store:
    """Open the app's store, which must exist already (a command never creates one)."""
    _no_store_yet(app, store_path)
    return open_store(app, store_path, read_only=read_only)


def known_table(app: App, store: Store, name: str) -> TableMeta:
    """The store's table ``name``; an error naming the tables there if it has none."""
    from patterns.engine.admin import Desk
    from patterns.engine.admin import known_table as known

    return known(Desk(store, app), name)


@contextmanager
def door(app: App, store_path: StoreAt | None, *, write: bool = False) -> Iterator[Doorway]:
    """The app's store, which must exist already: through the engine holding it (`patterns
    serve` or a `patterns run`), else the store opened here (read-only unless ``write``)."""
    _no_store_yet(app, store_path)
    opened = Doorway(store_path_for(app, store_path), app, write,
                     store_at(app, store_path))
    try:
        yield opened
    finally:
        opened.close()


class Doorway:
    """A command's door to the store (see :mod:`patterns.engine.door`), opened again if the
    engine behind it ends while the command waits."""

    def __init__(self, path: Path, app: App, write: bool, store: StoreAt) -> None:
        from patterns.engine.door import open_door

        self.path, self.app, self.write, self.store = path, app, write, store
        self.current: Door = open_door(path, app, write=write, store=store)

    def call(self, action: str, /, **args: Any) -> Any:
        return self._again_if_gone(lambda: self.current.call(action, **args))

    def rows(self, table: str, version: int | None = None, limit: int | None = None,
             offset: int | None = None) -> tuple[Scan, pa.Schema, Iterator[pa.RecordBatch]]:
        return self._again_if_gone(lambda: self.current.rows(table, version, limit, offset))

    def close(self) -> None:
        self.current.close()

    def _again_if_gone(self, ask: Callable[[], T]) -> T:
        """``ask()``; if the engine asked has ended meanwhile, ask again through the door
        there is now (the file, or the next engine)."""
        from patterns.engine.door import open_door
        from patterns.engine.engine_file import running_engine
        from patterns.errors import EngineError

        while True:
            try:
                return ask()
            except EngineError:
                if running_engine(self.path) is not None:
                    raise
                self.current.close()
                self.current = open_door(self.path, self.app, write=self.write,
                                         store=self.store)

    def call_when_free(self, action: str, /, **args: Any) -> Any:
        """A reset: while a run it concerns is in progress, say so (on stderr), wait for the
        run to end and ask again (Ctrl-C gives up, changing nothing)."""
        import time

        said = False
        while True:
            result = self.call(action, **args)
            busy = result.get("busy") if isinstance(result, dict) else None
            if not busy:
                return result
            if not said:
                click.secho(f"waiting for run {busy['run']} of node {busy['node']} to end...",
                            dim=True, err=True)
                said = True
            time.sleep(0.1)


def confirm(yes: bool, question: str, *, flag: str = "-y", default: bool = False) -> None:
    """Ask before a destructive change unless ``--yes`` was given; abort (exit 1) on no.
    An answer may come piped in; with no terminal and nothing piped (a script, a cron job),
    refuse, changing nothing, and name the flag that skips the question."""
    if yes:
        return
    try:
        answer = click.confirm(question, default=default)
    except click.Abort:  # end of input: Ctrl-D at a terminal, or nobody to answer
        if can_ask():
            raise
        from patterns.errors import ConfigError

        raise ConfigError(f"there is no terminal to answer \"{question}\", so nothing was "
                          f"changed: give {flag} to go ahead without asking") from None
    if not answer:
        raise click.Abort()


def can_ask() -> bool:
    """Whether a question can be answered: stdin is a terminal."""
    return sys.stdin is not None and sys.stdin.isatty()


YES_OPTION = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
