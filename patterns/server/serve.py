"""Running the server: the apps, the HTTP listener, graceful stop, hot reload.

``serve()`` blocks until SIGINT or SIGTERM, then drains: no new runs start, running ones get
``drain_seconds`` to finish and are then stopped (rolled back to their last checkpoint and
queued again for the next start), webhook records waiting are committed, and the stores are
closed. While it runs, each app's ``.patterns/server.json`` tells the CLI where the server
is, so commands that act on the app go through it. Who may use the server (its token, the
Host names and Origins it accepts) is :mod:`patterns.server.security`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from patterns.errors import ConfigError, GraphError

log = logging.getLogger("patterns.server")

SERVER_FILE = "server.json"


def server_file(root: Path) -> Path:
    return root / ".patterns" / SERVER_FILE


def serve(app_dirs: list[Path], *, host: str = "127.0.0.1", port: int = 8000,
          store: str | None = None, auth_token: str | None = None, reload: bool = False,
          workers: int | None = None, drain_seconds: float = 30.0,
          allow_hosts: tuple[str, ...] = (), allow_origins: tuple[str, ...] = (),
          sandbox: bool = True, executor: str | None = None,
          data_plane_host: str | None = None, acceptors: int = 0,
          announce: Callable[[str], None] = print,
          ready: Callable[[str, str, list[str]], None] | None = None) -> None:
    """(``ready``: called with the URL, the token and the apps' slugs once the server
    answers; ``patterns studio`` opens the browser there. ``acceptors``: processes taking
    requests on the listening socket, webhooks served in them, the rest passed to this one
    over a private Unix socket (0: this process takes them all; docs/server.md).)"""
    import uvicorn
    from fastapi import FastAPI

    from patterns.server.api import create_app
    from patterns.server.hub import AppService, Hub
    from patterns.server.ingest import WebhookFront
    from patterns.server.security import Access, is_loopback, server_token, token_file

    if auth_token:
        token, hint = auth_token, "the one given with --auth-token (or PATTERNS_AUTH_TOKEN)"
    else:
        token, hint = server_token(), f"in {token_file()}"
    access = Access.build(token, host, allow_hosts, allow_origins, token_hint=hint)
    store_path = _store_path(store, app_dirs)
    if executor not in (None, "local") and sandbox:
        raise ConfigError(f"--executor {executor} runs node code on the Dask workers, outside "
                          f"this machine's OS sandbox: add --no-sandbox to accept that (the "
                          f"workers should run as a user that can read only what nodes need)")
    if sandbox:
        from patterns.engine.sandbox import check_available

        check_available()  # one line saying why not, and the flag; nothing is started
    else:
        announce("node code is NOT sandboxed (--no-sandbox): nodes can read the store and "
                 "every secret")
    listener = _bind(host, port, shared=acceptors > 0)
    url = f"http://{_url_host(host)}:{listener.getsockname()[1]}"
    hub = Hub()
    try:
        for root in app_dirs:
            hub.add(AppService(root, store_path=store_path, workers=workers, sandbox=sandbox,
                               executor=executor, data_plane_host=data_plane_host))
    except BaseException:
        hub.stop(0)
        listener.close()
        raise
    api = create_app(hub, access)
    pool, sockets = None, [listener]
    if acceptors > 0:
        from patterns.server.acceptors import Acceptors, socket_dir

        folder = socket_dir()
        private = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        private.bind(os.path.join(folder, "server.sock"))
        private.listen(2048)
        sockets = [private]  # (the acceptors take the listener's connections)
        pool = Acceptors(hub, listener, acceptors, access, os.path.join(folder, "server.sock"))

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        hub.start()
        if pool is not None:
            pool.start()
        for svc in hub.apps.values():
            _write_server_file(svc.root, url)
        announce(f"serving {len(hub.apps)} app(s) on {url}")
        for svc in hub.apps.values():
            announce(f"  {svc.slug}: {svc.root} ({url}/api/v1/apps/{svc.slug}/nodes)")
        announce(f"  log in (browser): {url}/login?token={token}")
        announce(f"  API token: {hint} (the CLI on this machine uses it by itself)")
        if not is_loopback(host):
            announce("  listening beyond loopback over plain HTTP: the token crosses the "
                     "network in clear; put a TLS proxy in front (and --allow-host its name)")
        watcher = _watch(hub) if reload else None
        if ready is not None:
            ready(url, token, list(hub.apps))
        try:
            yield
        finally:
            if watcher is not None:
                watcher.set()
            announce("stopping: draining running nodes")
            if pool is not None:
                pool.stop(drain_seconds)
            hub.stop(drain_seconds)
            for svc in hub.apps.values():
                with contextlib.suppress(OSError):
                    server_file(svc.root).unlink()
            announce("stopped")

    api.router.lifespan_context = lifespan
    # (webhook requests are served ahead of the API's stack: patterns/server/ingest.py)
    config = uvicorn.Config(WebhookFront(api, hub, access), log_level="warning",
                            lifespan="on", access_log=False,
                            timeout_graceful_shutdown=max(1, int(drain_seconds)))
    # uvicorn handles SIGINT/SIGTERM (a graceful stop), then raises the signal again with the
    # handlers it found: make those no-ops, so a clean stop exits 0.
    previous = {sig: signal.signal(sig, lambda *_: None)
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run(sockets=sockets)
    finally:
        if pool is not None:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _store_path(store: str | None, app_dirs: list[Path]) -> str | Path | None:
    """The store ``--store`` names: a file (a path or ``duckdb://PATH``) or a database URL,
    which :func:`patterns.store.open_store` checks."""
    if store is None:
        return None
    if len(app_dirs) > 1:
        raise ConfigError("--store names one store, and each app needs its own: serve "
                          "several apps without --store (each uses APP/.patterns/)")
    if "://" in store and not store.startswith("duckdb://"):
        return store
    return Path(store.removeprefix("duckdb://"))


def _bind(host: str, port: int, shared: bool = False) -> socket.socket:
    """The server's socket on ``host:port``; ``shared``: bound for the acceptors, each of
    which listens on its own socket of the same port (SO_REUSEPORT: the kernel spreads the
    connections over them), so this one does not listen."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared and hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    else:
        shared = False
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another "
                          f"--port (0 picks a free one)") from None
    if not shared:
        sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _write_server_file(root: Path, url: str) -> None:
    """Where the server is (never its token: that stays in the Patterns home)."""
    from patterns.private_files import private_dir, write_private

    path = server_file(root)
    private_dir(path.parent)
    write_private(path, json.dumps({"url": url, "pid": os.getpid(), "auth": True}))


def running_server(root: Path) -> dict[str, Any] | None:
    """The server serving the app at ``root`` now (from its server.json), or None."""
    try:
        doc = json.loads(server_file(root).read_text())
        os.kill(int(doc["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return dict(doc)


def _watch(hub: Any) -> threading.Event:
    """Hot reload: reload an app when its files change (not its .patterns folder)."""
    from watchfiles import watch

    stop = threading.Event()

    def keep(change: Any, path: str) -> bool:
        return ".patterns" not in Path(path).parts and not path.endswith((".pyc", "~"))

    def run(svc: Any) -> None:
        for _ in watch(svc.root, watch_filter=keep, stop_event=stop, debounce=200):
            try:
                svc.reload()
                log.warning("reloaded %s", svc.root)
            except GraphError as exc:
                log.warning("not reloaded, %s has problems: %s", svc.root,
                            "; ".join(str(p) for p in exc.problems))
            except Exception as exc:
                log.warning("not reloaded: %s", exc)

    for svc in hub.apps.values():
        threading.Thread(target=run, args=(svc,), daemon=True, name="patterns-reload").start()
    return stop
