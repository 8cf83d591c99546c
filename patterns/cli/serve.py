"""``patterns serve``: keep apps up to date by themselves, and answer HTTP."""

from __future__ import annotations

from pathlib import Path

import click

from patterns.cli.executor_options import DATA_PLANE_HOST_OPTION, EXECUTOR_OPTION


@click.command()
@click.argument("app_dirs", metavar="[APP_DIR]...", nargs=-1,
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (beyond loopback, put a TLS proxy in front).")
@click.option("--port", default=8000, show_default=True, help="Port (0 picks a free one).")
@click.option("--store", metavar="PATH|URL",
              help="The store: a DuckDB file path, duckdb://PATH or postgresql://USER:PASSWORD"
                   "@HOST:PORT/DB (one app only; env PATTERNS_STORE). Default: "
                   "APP/.patterns/store.duckdb.")
@click.option("--auth-token", envvar="PATTERNS_AUTH_TOKEN", metavar="TOKEN",
              help="The token the API requires (env PATTERNS_AUTH_TOKEN). Default: the one "
                   "in $PATTERNS_HOME/server-token, made on first use.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Also answer requests for this Host name, e.g. a proxy's (repeatable). "
                   "Loopback names and the --host address are always accepted.")
@click.option("--allow-origin", "allow_origins", multiple=True, metavar="ORIGIN",
              help="Also accept requests from web pages of this origin, e.g. "
                   "https://studio.example.com (repeatable).")
@click.option("--reload", is_flag=True, help="Reload an app when its files change.")
@click.option("--workers", type=int, default=None,
              help="Runs at once per app (default: the number of cores, at least 4).")
@click.option("--acceptors", type=click.IntRange(0, 64), default=0, envvar="PATTERNS_ACCEPTORS",
              show_default=True,
              help="Processes that take requests on the port beside the server, serving "
                   "webhooks on more cores (the rest goes to the server); 0: the server takes "
                   "them all (env PATTERNS_ACCEPTORS).")
@click.option("--drain-seconds", default=30.0, show_default=True,
              help="On stop, how long running nodes get to finish before they are stopped "
                   "(rolled back, and run again at the next start).")
@click.option("--no-sandbox", "no_sandbox", is_flag=True, envvar="PATTERNS_NO_SANDBOX",
              help="Run node code without the OS sandbox (bubblewrap), as the server's user: "
                   "it can then read the store and every secret (env PATTERNS_NO_SANDBOX=1).")
@click.option("--quiet", "-q", is_flag=True,
              help="Do not log each run's end and failure (start, stop and problems only).")
@EXECUTOR_OPTION
@DATA_PLANE_HOST_OPTION
def serve(app_dirs: tuple[Path, ...], host: str, port: int, store: str | None,
          auth_token: str | None, allow_hosts: tuple[str, ...],
          allow_origins: tuple[str, ...], reload: bool, workers: int | None,
          drain_seconds: float, no_sandbox: bool, quiet: bool, executor: str | None,
          data_plane_host: str | None, acceptors: int) -> None:
    """Serve apps: run nodes when their inputs get new rows, on their cron schedules and when
    asked; take webhooks; answer the REST API (/api/v1). Ctrl-C stops cleanly.

    Each run's end is logged here (node, status, why it ran, rows written, time), a failure
    with its error line and the command that shows its output; --quiet leaves them out.

    The API needs the server's token, even on loopback (so no web page you visit can drive
    it): the CLI on this machine uses it by itself, a browser logs in with the URL printed
    at start."""
    import logging

    from patterns.server.serve import serve as run_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    if quiet:  # (each run's end: patterns.server.hub.log_end)
        logging.getLogger("patterns.server.runs").setLevel(logging.ERROR)

    from patterns.cli.app_folder import nearest_app

    roots = [nearest_app(d) for d in (app_dirs or (Path("."),))]
    run_server(roots, host=host, port=port, store=store, auth_token=auth_token,
               reload=reload, workers=workers, drain_seconds=drain_seconds,
               allow_hosts=allow_hosts, allow_origins=allow_origins,
               sandbox=not no_sandbox, executor=executor, data_plane_host=data_plane_host,
               acceptors=acceptors,
               announce=lambda line: click.echo(line, err=False))


def register(group: click.Group) -> None:
    from patterns.cli.studio import studio

    group.add_command(serve)
    group.add_command(studio)
