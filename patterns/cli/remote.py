"""The CLI as a client of a running server.

Commands that act on an app (``trigger``, ``runs``, ``logs``, ``table show``, ``list
webhooks``, ``create secret``, ``upload``, ``download``) go through the server when one is
serving that app (its ``.patterns/server.json`` says where) or when ``--server URL`` (or
``PATTERNS_SERVER``) names one; otherwise they open the store directly. The user never has to
know which: the output is the same.

The server wants its token (see :mod:`patterns.server.security`): the CLI sends
``PATTERNS_AUTH_TOKEN`` if set, else, to a server on this machine, the token in
``$PATTERNS_HOME/server-token`` that ``patterns serve`` made, so no flag is needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from patterns.errors import ConfigError

if TYPE_CHECKING:
    from patterns.graph.model import App

SERVER_OPTION = click.option(
    "--server", "server_url", envvar="PATTERNS_SERVER", metavar="URL",
    help="Ask this running server (env PATTERNS_SERVER). Default: the server serving the app, "
         "if any, else the app's store directly.")


class Remote:
    """One app on a running server, reached over its REST API."""

    def __init__(self, url: str, app: App, token: str | None = None) -> None:
        from patterns.server.security import client_token

        self.url = url.rstrip("/")
        self.token = token if token is not None else client_token(self.url)
        self.slug = self._find_slug(app)

    @property
    def base(self) -> str:
        return f"{self.url}/api/v1/apps/{self.slug}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(self, method: str, path: str, *, absolute: bool = False, **kwargs: Any) -> Any:
        import requests

        url = path if absolute else f"{self.base}{path}"
        timeout = (10, None) if kwargs.get("stream") else 60  # a stream may be quiet long
        try:
            response = requests.request(method, url, headers=self._headers(), timeout=timeout,
                                        **kwargs)
        except requests.ConnectionError:
            raise ConfigError(f"no server answers at {self.url}: start it with `patterns serve`, "
                              f"or leave out --server / PATTERNS_SERVER") from None
        except requests.RequestException as exc:
            raise ConfigError(f"the server at {self.url} did not answer properly: {exc}") \
                from None
        if response.status_code >= 400:
            raise ConfigError(server_error(response))
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return _json(self.request("GET", path, **kwargs), self.url)

    def post(self, path: str, **kwargs: Any) -> Any:
        return _json(self.request("POST", path, **kwargs), self.url)

    def _find_slug(self, app: App) -> str:
        apps = self.request("GET", f"{self.url}/api/v1/apps", absolute=True).json()
        root = str(app.root.resolve())
        for entry in apps:
            if entry.get("root") == root:
                return str(entry["slug"])
        from patterns.server.hub import slug_of

        slug = slug_of(app)
        if any(entry.get("slug") == slug for entry in apps):
            return slug
        served = ", ".join(e["slug"] for e in apps) or "none"
        raise ConfigError(f"the server at {self.url} does not serve app '{slug}' "
                          f"(it serves: {served})")

    def events(self, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Server-sent events of ``path``: (event, data) pairs."""
        import requests

        response = self.request("GET", path, stream=True)
        kind = "message"
        try:
            for raw in response.iter_lines(decode_unicode=True):
                if raw.startswith("event:"):
                    kind = raw[6:].strip()
                elif raw.startswith("data:"):
                    yield kind, json.loads(raw[5:])
        except requests.RequestException as exc:
            raise ConfigError(f"the stream from {self.url} broke off: {exc}") from None


def server_error(response: Any) -> str:
    """One line for an error answer of the server (its message, and what to do)."""
    try:
        message = response.json().get("error") or response.text
    except (ValueError, AttributeError):
        message = response.text
    if response.status_code == 401:
        message += (" (the CLI sends PATTERNS_AUTH_TOKEN if set, else, to a server on this "
                    "machine, the token in $PATTERNS_HOME/server-token)")
    return f"the server says: {message}"


def _json(response: Any, url: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ConfigError(f"the server at {url} did not answer with JSON: is it a Patterns "
                          f"server?") from None


def server_for(app: App, server_url: str | None) -> Remote | None:
    """The server to ask about ``app``: ``server_url`` if given, else the one serving it
    now, else None (use the store)."""
    if server_url:
        return Remote(server_url, app)
    from patterns.server.serve import running_server

    running = running_server(app.root)
    if running is None:
        return None
    return Remote(str(running["url"]), app)


def record_from_json(doc: dict[str, Any]) -> Any:
    """A run record from the API's JSON, for the same printing as local runs."""
    import datetime as dt

    from patterns.store.model import RunRecord

    fields = set(RunRecord.__dataclass_fields__)
    values = {k: v for k, v in doc.items() if k in fields}
    for key in ("queued_at", "started_at", "ended_at"):
        if values.get(key):
            values[key] = dt.datetime.fromisoformat(values[key])
    values.setdefault("queued_at", values.get("started_at"))
    return RunRecord(**values)
