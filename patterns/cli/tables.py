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
@click.option("--schema", is_flag=True, help="Also each table's columns and their types.")
@STORE_OPTION
@JSON_OPTION
def list_tables(app_dir: Path, schema: bool, store_path: StoreAt | None, as_json: bool) -> None:
    """The app's tables: version, rows, columns and last commit."""
    app = readable_app(app_dir)
    with door(app, store_path) as opened:
        docs: list[dict[str, Any]] = opened.call("tables")
        kinds = {d["name"]: opened.call("table", name=d["name"])["columns"]
                 for d in docs if schema and d["exists"]}
    if as_json:
        for doc in docs:
            if doc["name"] in kinds:
                doc["schema"] = kinds[doc["name"]]
        print_json(docs)
        return
    from rich.text import Text

    from patterns.cli.render import Col, make_console, number, print_table, when

    columns = [Col("table", "key"), Col("version", "number"), Col("rows", "number"),
               Col("columns", "number"), Col("last commit", "key"),
               *((Col("schema", "long"),) if schema else ())]
    view = [[doc["name"], number(doc["version"]), number(doc["rows"]), number(doc["columns"]),
             when(doc["last_commit"]) if doc["last_commit"] else Text("not written yet",
                                                                      style="dim"),
             *((", ".join(f"{c['name']} {c['kind']}" for c in kinds.get(doc["name"], [])),)
               if schema else ())]
            for doc in docs]
    print_table(make_console(), columns, view, title=f"{app.title}: {len(docs)} table(s)",
                label=(0,), full_hint="schemas are cut to fit: `--json` has them whole")


@table.command("show")
@APP_REQUIRED
@TABLE_ARGUMENT
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table",
              show_default=True, help="How to print the rows.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=0),
              help="Print at most this many rows.")
@click.option("--offset", default=0, type=click.IntRange(min=0), help="Skip this many rows.")
@click.option("--columns", "columns", metavar="NAME,...",
              help="Only these columns, in this order (comma-separated).")
@click.option("--vertical/--horizontal", "vertical", default=None,
              help="One block per row, each value whole (default: when a row is wider than "
                   "the terminal), or one line per row.")
@click.option("--version", "version", type=int, help="Read this version (default: current).")
@STORE_OPTION
@SERVER_OPTION
def show(app_dir: Path, table_name: str, fmt: str, limit: int, offset: int,
         columns: str | None, vertical: bool | None, version: int | None,
         store_path: StoreAt | None, server_url: str | None) -> None:
    """Print rows of TABLE, oldest first, with each column's type.

    In a terminal, a row wider than the screen is shown as one block per row, each value
    whole (--vertical always, --horizontal never: values are then cut to fit). Piped, the
    table is plain text and nothing is cut; --format jsonl or csv for programs."""
    app = readable_app(app_dir)
    remote = server_for(app, server_url) if server_url and version is None else None
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    if remote is not None:
        _show_remote(remote, table_name, fmt, limit, offset, wanted, vertical)
        return
    with door(app, store_path) as opened:
        current = opened.call("table", name=table_name)
        scan, schema, batches = opened.rows(table_name, version, limit=limit, offset=offset)
        names = _chosen(table_name, scan.names, wanted)
        if wanted is not None:
            batches = (b.select(names) for b in batches)
        if fmt == "jsonl":
            rows.write_jsonl(sys.stdout, batches, scan.json_columns)
        elif fmt == "csv":
            rows.write_csv(sys.stdout, names, batches)
        else:
            from patterns.cli.render import make_console, number
            from patterns.store.columns import kind_of_arrow

            known = {c["name"]: c["kind"] for c in current["columns"]}
            kinds = [known.get(n) or kind_of_arrow(schema.field(n).type, schema.field(n))
                     for n in names]
            total = current["rows"] if scan.version == current["version"] else None
            console = make_console()
            shown = rows.print_records(console, names, kinds, batches, vertical=vertical)
            of = f" of {number(total)}" if total is not None else ""
            summary = (f"rows {number(offset + 1)} to {number(offset + shown)}{of}" if shown
                       else f"no rows here{of}")
            console.print(f"[dim]{current['name']} version {scan.version}: {summary}[/]")


def _chosen(table_name: str, names: list[str], wanted: list[str] | None) -> list[str]:
    """The columns ``--columns`` asks for, each checked against the table's."""
    if wanted is None:
        return names
    import difflib

    for name in wanted:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(f"table {table_name} has no column '{name}': {hint}its columns "
                              f"are {', '.join(names)}")
    return wanted


def _show_remote(remote: Any, table_name: str, fmt: str, limit: int, offset: int,
                 wanted: list[str] | None, vertical: bool | None) -> None:
    """Rows from the server's API, printed as ``show`` prints local ones."""
    import json

    import pyarrow as pa

    page = remote.get(f"/tables/{table_name}/rows",
                      params={"limit": max(limit, 1), "offset": offset})
    records = page["rows"][:limit]
    names = _chosen(table_name, list(records[0]) if records else [], wanted) \
        if records else wanted or []
    records = [{n: r.get(n) for n in names} for r in records]
    if fmt == "jsonl":
        for record in records:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    flat = [{k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in r.items()}
            for r in records]
    batch = pa.Table.from_pylist(flat).to_batches() if flat else []
    if fmt == "csv":
        rows.write_csv(sys.stdout, names, batch)
        return
    from patterns.cli.render import make_console, number
    from patterns.store.columns import kind_of_arrow

    kinds = ([kind_of_arrow(f.type, f) for f in batch[0].schema] if batch
             else ["" for _ in names])
    console = make_console()
    shown = rows.print_records(console, names, kinds, batch, vertical=vertical)
    total = number(page["total"])
    summary = (f"rows {number(offset + 1)} to {number(offset + shown)} of {total}"
               if shown else f"no rows here of {total}")
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
        if str(output) != "-":
            current = opened.call("table", name=table_name)
            total = current["rows"] if scan.version == current["version"] else None
            batches = _with_progress(batches, total, f"exporting {table_name}")
        if str(output) == "-":
            count = _write(fmt, sys.stdout, None, scan, schema, batches)
        else:
            count = _write_file(fmt, output, scan, schema, batches)
    if str(output) != "-":
        click.secho(f"exported {count:,} row(s) of {table_name} (version {scan.version}) "
                    f"to {output}", fg="green", err=True)


def _with_progress(batches: Iterator[pa.RecordBatch], total: int | None, what: str
                   ) -> Iterator[pa.RecordBatch]:
    """``batches``, with a progress bar on stderr when it is a terminal (rows, rate, time
    left); nothing when it is not."""
    from patterns.cli.render import make_console

    console = make_console(stderr=True)
    if not console.is_terminal:
        yield from batches
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from patterns.cli.render import number

    of = f" of {number(total)}" if total is not None else ""
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(f"{what}: 0{of} rows", total=total)
        done = 0
        for batch in batches:
            yield batch
            done += batch.num_rows
            progress.update(task, advance=batch.num_rows,
                            description=f"{what}: {number(done)}{of} rows")


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
    from rich.text import Text

    from patterns.cli.render import Col, make_console, print_table, when
    from patterns.store.model import short_run_id

    columns = [Col("version", "key"), Col("created", "key"), Col("reason", "long"),
               Col("run", "key"), Col("kept", "key")]
    view = [[Text(str(doc["version"])) + (Text(" (current)", style="green") if doc["current"]
                                          else Text("")),
             when(doc["created_at"]), str(doc["reason"]), short_run_id(doc["run_id"]) if doc["run_id"] else "-",
             "yes" if doc["available"] else Text("dropped", style="dim")]
            for doc in docs]
    print_table(make_console(), columns, view, title=f"{table_name}: {len(docs)} version(s)",
                label=(0,))


def register(group: click.Group) -> None:
    group.add_command(table)
