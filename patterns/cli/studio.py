"""``patterns studio APP``: serve one app and open its Studio in the browser (a shortcut for
``patterns serve APP`` and opening the login URL it prints)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import click


@click.command()
@click.argument("app_dir", metavar="[APP_DIR]", required=False, default=".",
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (beyond loopback, put a TLS proxy in front).")
@click.option("--port", default=8000, show_default=True, help="Port (0 picks a free one).")
@click.option("--store", metavar="PATH|URL",
              help="The store, as for `patterns serve` (default APP/.patterns/store.duckdb).")
@click.option("--no-open", "no_open", is_flag=True,
              help="Print the Studio's URL without opening a browser.")
@click.option("--reload", is_flag=True, help="Reload the app when its files change.")
@click.option("--no-sandbox", "no_sandbox", is_flag=True, envvar="PATTERNS_NO_SANDBOX",
              help="Run node code without the OS sandbox, as for `patterns serve`.")
def studio(app_dir: Path, host: str, port: int, store: str | None, no_open: bool,
           reload: bool, no_sandbox: bool) -> None:
    """Serve the app and open its Studio in the browser: its graph, code, runs, tables,
    charts and dashboards (docs/studio.md). Ctrl-C stops the server."""
    import logging

    from patterns.server.serve import serve as run_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")

    def ready(url: str, token: str, slugs: list[str]) -> None:
        page = f"/apps/{quote(slugs[0])}" if slugs else "/"
        click.echo(f"Studio: {url}{page}")
        if not no_open:
            import threading
            import webbrowser

            login = f"{url}/login?token={quote(token)}&next={quote(page)}"
            # (a browser may take a while to start: the server does not wait for it)
            threading.Thread(target=webbrowser.open, args=(login,), daemon=True).start()

    run_server([app_dir.resolve()], host=host, port=port, store=store, reload=reload,
               sandbox=not no_sandbox, ready=ready,
               announce=lambda line: click.echo(line, err=False))
