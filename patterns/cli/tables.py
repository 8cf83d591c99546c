"""``patterns table list|show|export|reset|delete|alter|versions``: look at and manage an
app's tables."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from patterns.cli import rows
from patterns.cli.context import (
    APP_ARGUMENT,
    APP_REQUIRED,
    JSON_OPTION,
    SERVER_OPTION,
    STORE_OPTION,
    YES_OPTION,
    AppGroup,
    StoreAt,
    confirm,
    door,
    load,
    print_json,
    readable_app,
)
from patterns.cli.remote import server_for
from patterns.cli.rows import FORMATS
from patterns.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

    from patterns.engine.admin import Scan

TABLE_ARGUMENT = click.argument("table_name", metavar="TABLE")


@click.group(cls=AppGroup)
def table() -> None:
    """Look at and manage the app's tables."""


@table.command("list")
@APP_ARGUMENT
@STORE_OPTION
@JSON_OPTION
def list_tables(app_dir: Path, store_path: StoreAt | None, as_json: bool) -> None:
    """The app's tables: version, rows, columns and last commit."""
    app = readable_app(app_dir)
    with door(app, store_path) as opened:
        docs: list[dict[str, Any]] = opened.call("tables")
    if as_json:
        print_json(docs)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    view = Table(title=f"{escape(app.title)}: {len(docs)} table(s)")
    for col in ("table", "version", "rows", "columns", "last commit"):
        view.add_column(col, justify="right" if col in ("version", "rows", "columns") else "left")
    for doc in docs:
        when = doc["last_commit"]
        view.add_row(escape(doc["name"]), str(doc["version"] or "-"), str(doc["rows"]),
                     str(doc["columns"]),
                     when.astimezone().strftime("%Y-%m-%d %H:%M:%S") if when
                     else "[dim]not written yet[/]")
    Console(highlight=False).print(view)


@table.command("show")
@APP_REQUIRED
@TABLE_ARGUMENT
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table",
              show_default=True, help="How to print the rows.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=0),
              help="Print at most this many rows.")
@click.option("--offset", default=0, type=click.IntRange(min=0), help="Skip this many rows.")
@click.option("--version", "version", type=int, help="Read this version (default: current).")
@STORE_OPTION
@SERVER_OPTION
def show(app_dir: Path, table_name: str, fmt: str, limit: int, offset: int,
         version: int | None, store_path: StoreAt | None, server_url: str | None) -> None:
    """Print rows of TABLE, oldest first."""
    app = readable_app(app_dir)
    remote = server_for(app, server_url) if server_url and version is None else None
    if remote is not None:
        _show_remote(remote, table_name, fmt, limit, offset)
        return
    with door(app, store_path) as opened:
        current = opened.call("table", name=table_name)
        scan, _, batches = opened.rows(table_name, version, limit=limit, offset=offset)
        if fmt == "jsonl":
            rows.write_jsonl(sys.stdout, batches, scan.json_columns)
        elif fmt == "csv":
            rows.write_csv(sys.stdout, scan.names, batches)
        else:
            from rich.console import Console

            total = current["rows"] if scan.version == current["version"] else None
            shown = rows.rich_table(scan.names, batches)
            of = f" of {total}" if total is not None else ""
            summary = (f"rows {offset + 1} to {offset + shown.row_count}{of}" if shown.row_count
                       else f"no rows here{of}")
            console = Console(highlight=False)
            console.print(shown)
            console.print(f"[dim]{current['name']} version {scan.version}: {summary}[/]")


def _show_remote(remote: Any, table_name: str, fmt: str, limit: int, offset: int) -> None:
    """Rows from the server's API, printed as ``show`` prints local ones."""
    import json

    import pyarrow as pa

    page = remote.get(f"/tables/{table_name}/rows",
                      params={"limit": max(limit, 1), "offset": offset})
    records = page["rows"][:limit]
    if fmt == "jsonl":
        for record in records:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    names = list(records[0]) if records else []
    flat = [{k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in r.items()}
            for r in records]
    batch = pa.Table.from_pylist(flat).to_batches() if flat else []
    if fmt == "csv":
        rows.write_csv(sys.stdout, names, batch)
        return
    from rich.console import Console

    shown = rows.rich_table(names, batch)
    summary = (f"rows {offset + 1} to {offset + shown.row_count} of {page['total']}"
               if shown.row_count else f"no rows here of {page['total']}")
    console = Console(highlight=False)
    console.print(shown)
    console.print(f"[dim]{table_name} version {page['version']}: {summary} "
                  f"(from {remote.url})[/]")


@table.command("export")
@APP_REQUIRED
@TABLE_ARGUMENT
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="The file format (default: from the output file's extension).")
@click.option("--output", "-o", "output", required=True, type=click.Path(path_type=Path),
              help="The file to write ('-' for stdout, csv and jsonl only).")
@click.option("--version", "version", type=int, help="Export this version (default: current).")
@STORE_OPTION
def export(app_dir: Path, table_name: str, fmt: str | None, output: Path, version: int | None,
           store_path: StoreAt | None) -> None:
    """Write every row of TABLE to a file, in batches."""
    fmt = fmt or _format_of(output)
    if str(output) == "-" and fmt == "parquet":
        raise ConfigError("parquet cannot go to stdout: give a file with --output")
    app = readable_app(app_dir)
    with door(app, store_path) as opened:
        scan, schema, batches = opened.rows(table_name, version)
        if str(output) == "-":
            count = _write(fmt, sys.stdout, None, scan, schema, batches)
        else:
            count = _write_file(fmt, output, scan, schema, batches)
    if str(output) != "-":
        click.secho(f"exported {count} row(s) of {table_name} (version {scan.version}) "
                    f"to {output}", fg="green", err=True)


def _format_of(output: Path) -> str:
    suffix = output.suffix.lower().lstrip(".")
    fmt = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "parquet": "parquet",
           "pq": "parquet"}.get(suffix)
    if fmt is None:
        raise ConfigError(f"cannot tell the format of {output} from its extension: "
                          f"pass --format csv, jsonl or parquet")
    return fmt


def _write_file(fmt: str, output: Path, scan: Scan, schema: pa.Schema,
                batches: Iterator[pa.RecordBatch]) -> int:
    """Write to a temporary file next to ``output``, then move it in place."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.partial")
    try:
        if fmt == "parquet":
            count = _write(fmt, None, str(tmp), scan, schema, batches)
        else:
            with tmp.open("w", encoding="utf-8", newline="") as out:
                count = _write(fmt, out, None, scan, schema, batches)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def _write(fmt: str, out: Any, path: str | None, scan: Scan, schema: pa.Schema,
           batches: Iterator[pa.RecordBatch]) -> int:
    if fmt == "jsonl":
        return rows.write_jsonl(out, batches, scan.json_columns)
    if fmt == "csv":
        return rows.write_csv(out, scan.names, batches)
    assert path is not None
    return rows.write_parquet(path, schema, batches)


@table.command("reset")
@APP_REQUIRED
@TABLE_ARGUMENT
@YES_OPTION
@STORE_OPTION
def reset(app_dir: Path, table_name: str, yes: bool, store_path: StoreAt | None) -> None:
    """Start TABLE over as a new, empty version; streams on it start from the beginning."""
    app = load(app_dir)
    with door(app, store_path, write=True) as opened:
        current = opened.call("table", name=table_name)
        confirm(yes, f"Reset table {current['name']} ({current['rows']} row(s) in version "
                     f"{current['version']})? Readers will see an empty table")
        new = opened.call_when_free("reset_table", name=table_name)
    click.secho(f"table {new['name']} is now version {new['version']}, empty; the old rows "
                f"stay readable with `--version {new['old_version']}` while that version is "
                f"kept", fg="green")


@table.command("delete")
@APP_REQUIRED
@TABLE_ARGUMENT
@click.option("--where", "where", required=True, metavar="CONDITION",
              help='The rows to delete, as a SQL condition (e.g. "amount < 0").')
@YES_OPTION
@STORE_OPTION
def delete(app_dir: Path, table_name: str, where: str, yes: bool,
           store_path: StoreAt | None) -> None:
    """Delete the rows of TABLE that a SQL condition holds for, as a new version (the old
    one stays readable while it is kept)."""
    app = load(app_dir)
    with door(app, store_path, write=True) as opened:
        found = opened.call("count_where", name=table_name, where=where)
        if not found["matched"]:
            click.secho(f"no row of table {found['name']} has {where}: nothing changed",
                        fg="yellow")
            return
        confirm(yes, f"Delete {found['matched']} of {found['rows']} row(s) of table "
                     f"{found['name']} (version {found['version']}) where {where}?")
        new = opened.call_when_free("delete_rows", name=table_name, where=where)
    click.secho(f"deleted {found['matched']} row(s): table {new['name']} is now version "
                f"{new['version']}; the old rows stay readable with `--version "
                f"{new['old_version']}` while that version is kept", fg="green")


@table.command("alter")
@APP_REQUIRED
@TABLE_ARGUMENT
@click.argument("column")
@click.argument("type_name", metavar="TYPE")
@YES_OPTION
@STORE_OPTION
def alter(app_dir: Path, table_name: str, column: str, type_name: str, yes: bool,
          store_path: StoreAt | None) -> None:
    """Change the type of COLUMN of TABLE to TYPE (int, float, bool, text, date, timestamp,
    timestamptz, json...), casting every value, as a new version."""
    app = load(app_dir)
    with door(app, store_path, write=True) as opened:
        current = opened.call("table", name=table_name)
        old = next((c["kind"] for c in current["columns"] if c["name"] == column), "?")
        confirm(yes, f"Change column {column} of table {current['name']} from {old} to "
                     f"{type_name}?")
        new = opened.call_when_free("alter_column", name=table_name, column=column,
                                    type_name=type_name)
    kind = new["columns"][column]
    click.secho(f"column {column} of table {new['name']} now holds {kind} values "
                f"(version {new['version']}); the old values stay readable with `--version "
                f"{new['old_version']}` while that version is kept", fg="green")


@table.command("versions")
@APP_REQUIRED
@TABLE_ARGUMENT
@STORE_OPTION
@JSON_OPTION
def versions(app_dir: Path, table_name: str, store_path: StoreAt | None, as_json: bool) -> None:
    """The versions of TABLE: when and why each began, and which are kept."""
    app = readable_app(app_dir)
    with door(app, store_path) as opened:
        docs: list[dict[str, Any]] = opened.call("versions", name=table_name)
    if as_json:
        print_json(docs)
        return
    from rich.console import Console
    from rich.table import Table

    from patterns.store.model import short_run_id

    view = Table(title=f"{table_name}: {len(docs)} version(s)")
    for col in ("version", "created", "reason", "run", "kept"):
        view.add_column(col)
    for doc in docs:
        mark = " [green](current)[/]" if doc["current"] else ""
        view.add_row(f"{doc['version']}{mark}",
                     doc["created_at"].astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                     str(doc["reason"]), short_run_id(doc["run_id"]) if doc["run_id"] else "-",
                     "yes" if doc["available"] else "[dim]dropped[/]")
    Console(highlight=False).print(view)


def register(group: click.Group) -> None:
    group.add_command(table)
