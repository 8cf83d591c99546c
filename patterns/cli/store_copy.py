"""``patterns store copy FROM TO``: move an app's whole store to another store (DuckDB to
PostgreSQL and back)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from patterns.store.interface import Store


@click.group("store")
def store() -> None:
    """Move an app's store between DuckDB and PostgreSQL."""


@store.command("copy")
@click.argument("from_url", metavar="FROM")
@click.argument("to_url", metavar="TO")
@click.option("--force", is_flag=True,
              help="Replace everything in TO if it is not empty (else refused).")
def copy(from_url: str, to_url: str, force: bool) -> None:
    """Copy the whole store FROM into the store TO: every kept table version (rows, hidden
    ids), state, stream positions, run history and logs, the run queue, cron schedules and
    webhook tokens. Each is a DuckDB file path, duckdb://PATH or
    postgresql://USER:PASSWORD@HOST:PORT/DB. TO is written in one transaction: on any
    failure it is left as it was. Stop every engine (`patterns serve`, `patterns run`) on
    either store first. Secrets are not in a store and are not copied."""
    from patterns.errors import StoreError
    from patterns.store import open_store
    from patterns.store.copy import copy_store

    source_file, target_file = _file(from_url), _file(to_url)
    if source_file is not None and not source_file.exists():
        raise StoreError(f"no store at {source_file}: give the store file of an app "
                         f"(APP/.patterns/store.duckdb) or a postgresql:// URL")
    for path, which in ((source_file, "source"), (target_file, "target")):
        if path is not None:
            _refuse_served_file(path, which)
    source: Store = open_store(from_url, read_only=True)
    try:
        target = open_store(to_url)
        try:
            report = copy_store(source, target, force=force, say=click.echo)
        finally:
            target.close()
    finally:
        source.close()
    versions = sum(v for v, _ in report.tables.values())
    click.secho(f"copied {len(report.tables)} tables ({versions} versions, {report.rows:,} "
                f"rows) and {report.metadata.get('runs', 0):,} runs from "
                f"{source.capabilities.location} to {target.capabilities.location}",
                fg="green")


def _file(url: str) -> Path | None:
    """The DuckDB file a store argument names (None: a database server)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return Path(url)
    return Path(rest) if scheme.lower() == "duckdb" else None


def _refuse_served_file(path: Path, which: str) -> None:
    from patterns.engine.engine_file import running_engine
    from patterns.errors import StoreError

    engine = running_engine(path) if path.exists() else None
    if engine is not None:
        raise StoreError(f"the {which} store {path} is held by {engine.what}: stop it "
                         f"first, then copy")


def register(group: click.Group) -> None:
    group.add_command(store)
