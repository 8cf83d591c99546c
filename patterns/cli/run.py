"""``patterns run``, ``patterns validate``, ``patterns manifest``."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from patterns.cli.context import (
    APP_ARGUMENT,
    JSON_OPTION,
    STORE_OPTION,
    StoreAt,
    load,
    print_json,
)
from patterns.cli.executor_options import DATA_PLANE_HOST_OPTION, EXECUTOR_OPTION
from patterns.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from patterns.engine.engine import Engine
    from patterns.engine.events import Reporter
    from patterns.engine.launching import Launcher
    from patterns.graph.model import App


def parse_params(values: tuple[str, ...]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--param {item!r} is not NAME=VALUE (e.g. --param limit=10, or "
                              f"--param NODE_ID.limit=10 for one node)")
        params[name.strip()] = value
    return params


@click.command()
@APP_ARGUMENT
@click.option("--node", "node_key", help="Run this node (file or id), then what is downstream.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A parameter value (repeatable); NODE_ID.NAME=VALUE for one node only.")
@STORE_OPTION
@click.option("--max-runs", default=1000, show_default=True,
              help="Stop after this many runs (guards against endless cycles).")
@click.option("--quiet", "-q", is_flag=True, help="Do not print the nodes' output.")
@click.option("--sandbox", is_flag=True,
              help="Run node code in the OS sandbox (bubblewrap), as `patterns serve` does: "
                   "no view of the store, secrets or other apps; the app folder read-only.")
@EXECUTOR_OPTION
@DATA_PLANE_HOST_OPTION
@JSON_OPTION
def run(app_dir: Path, node_key: str | None, params: tuple[str, ...], store_path: StoreAt | None,
        max_runs: int, quiet: bool, sandbox: bool, executor: str | None,
        data_plane_host: str | None, as_json: bool) -> None:
    """Run the app: nodes with no inputs, then every node whose inputs got new rows,
    until nothing is left to do.

    Ctrl-C stops: the running nodes are cancelled and rolled back to their last checkpoint
    (status `cancelled`), and the command exits 130; a second Ctrl-C exits at once."""
    from rich.markup import escape

    from patterns.cli.console import ConsoleReporter, print_runs
    from patterns.cli.render import duration, make_console
    from patterns.engine.reactive import ReactivePass

    overrides = parse_params(params)
    app = load(app_dir, overrides)
    launcher: Launcher | None = None
    workers: int | None = None
    if executor not in (None, "local"):
        if sandbox:
            raise ConfigError("--sandbox runs node code in this machine's OS sandbox; with "
                              "--executor the nodes run on the Dask workers instead: drop "
                              "one of the two")
        from patterns.engine.launching import executor_launcher, parallelism

        launcher, data_plane_host = executor_launcher(executor, data_plane_host)
        workers = parallelism(launcher)
    elif sandbox:
        from patterns.engine.launcher import sandboxed_launcher
        from patterns.engine.sandbox import check_available

        check_available()
        launcher = sandboxed_launcher(app.root, app.node_roots())
    node = app.node(node_key) if node_key else None
    console = make_console(stderr=as_json)
    for warning in app.warnings:  # keys the original format ignored (see patterns validate)
        console.print(f"warning: {warning}", style="yellow", markup=False)
    reporter = ConsoleReporter(console, quiet=quiet or as_json)
    started = time.monotonic()
    try:
        engine = hold_store(app, store_path, reporter, console, launcher, data_plane_host)
    except BaseException:
        if launcher is not None:
            launcher.close()
        raise
    from patterns.cli.interrupt import EXIT_INTERRUPTED, stop_on_interrupt

    live = reporter.live(engine.running_now) if not as_json else contextlib.nullcontext()
    with engine, live:
        run_pass = ReactivePass(engine, max_runs=max_runs, workers=workers)
        with stop_on_interrupt(run_pass, lambda text: console.print(f"[yellow]{text}[/]")):
            result = run_pass.run(only=node)
    elapsed = time.monotonic() - started
    if as_json:
        print_json({"ok": result.ok, "seconds": elapsed, "runs": [r.to_json() for r in result.runs],
                    "stopped": result.stopped,
                    "skipped": [{"node": n.id, "file": n.rel_file, "why": why}
                                for n, why in result.skipped]})
    else:
        if result.runs:
            print_runs(console, result.runs,
                       title=f"{len(result.runs)} run(s) in {duration(elapsed)}")
        else:
            console.print("[dim]nothing to run: every node is up to date[/]")
        for skipped, why in result.skipped:
            console.print(f"[dim]skipped {skipped.rel_file or skipped.id}: {why}[/]")
        for failed in result.runs:
            # (its traceback was in its live output, unless --quiet kept that quiet: then here)
            if failed.status != "succeeded" and failed.traceback and quiet:
                console.print(f"\n[red bold]{escape(failed.node_title)} {failed.status}[/] "
                              f"[dim](run {failed.short_id})[/]")
                console.print(failed.traceback.rstrip(), markup=False, highlight=False)
        if result.stopped:
            console.print(f"[red]{result.stopped}[/]")
    sys.exit(EXIT_INTERRUPTED if result.interrupted else 0 if result.ok else 1)


def hold_store(app: App, store_path: StoreAt | None, reporter: Reporter, console: Console,
            launcher: Launcher | None = None, data_plane_host: str | None = None) -> Engine:
    """An engine holding the app's store, once no other engine does: another `patterns run`
    is waited for (it ends by itself); `patterns serve` is not (it runs the app already)."""
    from patterns.cli.context import store_path_for
    from patterns.engine.door import BUSY_SECONDS, wait_for_engine
    from patterns.engine.engine import Engine
    from patterns.engine.engine_file import running_engine
    from patterns.errors import StoreBusyError

    path = store_path_for(app, store_path)
    busy_since: float | None = None
    while True:
        holder = running_engine(path)
        if holder is not None and holder.kind == "serve":
            raise ConfigError(f"{holder.what} is serving this app and holds its store: run a "
                              f"node there with `patterns trigger {app.root} NODE`, or stop "
                              f"the server first")
        wait_for_engine(path, lambda text: console.print(f"[dim]{text}[/]"))
        try:
            return Engine(app, store_path=store_path, reporter=reporter, launcher=launcher,
                          data_plane_host=data_plane_host)
        except StoreBusyError:  # an engine starting (not yet announced) or closing
            now = time.monotonic()
            if running_engine(path) is not None:
                busy_since = None
            elif busy_since is None:
                busy_since = now
            elif now - busy_since >= BUSY_SECONDS:
                raise
            time.sleep(0.1)


@click.command()
@APP_ARGUMENT
@JSON_OPTION
@click.option("--strict", is_flag=True,
              help="Exit 1 for warnings and nodes needing configuration too, not only errors.")
def validate(app_dir: Path, as_json: bool, strict: bool) -> None:
    """Check graph.yml and the node files; report every problem at once.

    Errors (the graph cannot be read: exit 1), warnings (keys the original format ignored)
    and nodes needing configuration (a parameter value, a secret, a storage's connection:
    they do not run until given, the rest of the app does) are listed apart; exit 0 when the
    graph itself is sound, unless --strict."""
    from patterns.engine.configuration import check_configuration
    from patterns.engine.secrets import SecretStore
    from patterns.errors import GraphError

    try:
        app = check_configuration(load(app_dir), SecretStore())
    except GraphError as exc:
        if not as_json:
            raise
        print_json({"valid": False, "problems": [p.__dict__ for p in exc.problems],
                    "warnings": [], "needs_configuration": []})
        sys.exit(1)
    warnings, needs = list(app.warnings), list(app.needs_configuration)
    failed = strict and bool(warnings or needs)
    if as_json:
        print_json({"valid": True, "problems": [], "nodes": len(app.nodes),
                    "warnings": [p.__dict__ for p in warnings],
                    "needs_configuration": [p.__dict__ for p in needs]})
        sys.exit(1 if failed else 0)
    for title, found, colour in (("warnings", warnings, "yellow"),
                                 ("needs configuration", needs, "magenta")):
        if found:
            click.secho(f"{title} ({len(found)}):", fg=colour, bold=True)
            for problem in found:
                click.secho(f"  {problem}", fg=colour)
    summary = f"{app.title}: {len(app.nodes)} node(s), {len(app.stores)} table(s), no errors"
    unconfigured = sum(1 for n in app.nodes if not n.configured)
    if unconfigured:
        summary += f"; {unconfigured} node(s) need configuration and will not run"
    if warnings:
        summary += f"; {len(warnings)} warning(s)"
    if not warnings and not needs:
        click.secho(f"✓ {app.title}: {len(app.nodes)} node(s), {len(app.stores)} table(s), "
                    f"no problems", fg="green")
    else:
        click.secho(f"! {summary}", fg="red" if failed else "yellow")
    sys.exit(1 if failed else 0)


@click.command()
@APP_ARGUMENT
def manifest(app_dir: Path) -> None:
    """Print the resolved graph (nodes, interfaces, edges) as JSON."""
    app = load(app_dir)
    print_json(app.to_manifest())


def register(group: click.Group) -> None:
    for command in (run, validate, manifest):
        group.add_command(command)
