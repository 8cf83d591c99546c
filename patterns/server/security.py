"""Keeping web pages out of the server (Jupyter's model; see docs/server.md, "Security").

A page the user visits can send requests to ``http://127.0.0.1:PORT`` (a ``text/plain`` or
form POST needs no CORS preflight), and with DNS rebinding it can even read the answers. So:

- **A token, even on loopback.** Generated on the first serve and kept in
  ``$PATTERNS_HOME/server-token`` (0600); ``--auth-token`` overrides it. Every ``/api/v1``
  request and every state-changing request outside ``/webhooks/`` needs it, as
  ``Authorization: Bearer TOKEN`` (the CLI) or the login cookie (the Studio), which
  ``GET /login?token=TOKEN`` (or ``/?token=TOKEN``) sets.
- **A Host allowlist** on every route (webhooks too): loopback names and addresses, the
  address the server is bound to, and names given with ``--allow-host``. A rebinding page's
  requests carry its own name (``Host: evil.example``) and are refused.
- **Origin checks**: a request whose ``Origin`` is not the server's own (or an
  ``--allow-origin``) is refused, ``null`` included.
- **A non-simple request shape** for a state-changing request authorised by the cookie: the
  header ``X-Patterns-Request`` or a JSON body, which no cross-site form can send.

Webhooks (exactly ``/webhooks/{app}/{token}``) are authorised by their own URL token and
keep taking requests from anyone holding the URL, with or without an ``Origin``. Nothing here
sends CORS headers, so no other origin can read any answer.

The middleware is plain ASGI (no Starlette at import), so the CLI can import the token
helpers cheaply and webhooks stay fast.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from patterns.errors import ConfigError

TOKEN_FILE = "server-token"
COOKIE = "patterns_token"
REQUEST_HEADER = "x-patterns-request"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
#: Where a login may send the browser: a path of this server, in plain characters.
_LOCAL_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


# ---------------------------------------------------------------------- the token
def token_file() -> Path:
    from patterns.engine.secrets import patterns_home

    return patterns_home() / TOKEN_FILE


def server_token() -> str:
    """The server token kept in ``$PATTERNS_HOME/server-token``, made (0600, in a 0700
    folder) the first time."""
    path = token_file()
    try:
        return _read(path) or _make(path)
    except OSError as exc:
        raise ConfigError(f"cannot make the server token {path}: {exc.strerror}; make "
                          f"{path.parent} writable, or give one with --auth-token") from None


def _make(path: Path) -> str:
    existing = _read(path)
    if existing:
        return existing
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another server made it a moment ago, or an empty file
        existing = _read(path)
        if existing:
            return existing
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def client_token(url: str) -> str | None:
    """The token the CLI sends to the server at ``url``: ``PATTERNS_AUTH_TOKEN`` if set,
    else (for a server on this machine only, never sent elsewhere) the one in
    ``$PATTERNS_HOME/server-token``."""
    explicit = os.environ.get("PATTERNS_AUTH_TOKEN")
    if explicit:
        return explicit
    if not is_loopback(urlsplit(url).hostname or ""):
        return None
    return _read(token_file())


def _read(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the server token {path}: {exc.strerror}; fix its "
                          f"permissions, or remove it to make a new one") from None
    return text or None


def is_loopback(host: str) -> bool:
    host = host.strip("[]").rstrip(".").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_value(token: str) -> str:
    """What the login cookie holds: derived from the token (not the token itself)."""
    return hmac.new(token.encode(), b"patterns login cookie", hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------- the policy
@dataclass(frozen=True)
class Access:
    """Who may talk to the server: its token, the Host names and the Origins it accepts."""

    token: str
    bound: str = "127.0.0.1"
    hosts: frozenset[str] = field(default_factory=frozenset)
    origins: frozenset[str] = field(default_factory=frozenset)
    #: Where the token came from, for error messages.
    token_hint: str = ""

    @classmethod
    def build(cls, token: str, bound: str, hosts: Iterable[str] = (),
              origins: Iterable[str] = (), token_hint: str = "") -> Access:
        names = frozenset(_host_name(h) for h in hosts if h.strip())
        for origin in origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or \
                    parts.path not in ("", "/"):
                raise ConfigError(f"--allow-origin {origin!r} is not an origin: give "
                                  f"scheme://host[:port], e.g. https://studio.example.com")
        return cls(token=token, bound=_host_name(bound), hosts=names,
                   origins=frozenset(o.rstrip("/").lower() for o in origins),
                   token_hint=token_hint)

    def host_allowed(self, host: str) -> bool:
        if is_loopback(host) or host in self.hosts:
            return True
        if self.bound in WILDCARDS:  # every address of this machine: any IP literal
            try:
                ipaddress.ip_address(host)
                return True
            except ValueError:
                return False
        return host == self.bound

    def origin_allowed(self, origin: str, host_header: str) -> bool:
        origin = origin.rstrip("/").lower()
        return origin in (f"http://{host_header}", f"https://{host_header}") or \
            origin in self.origins

    def bearer_ok(self, header: str) -> bool:
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and \
            hmac.compare_digest(given.strip().encode(), self.token.encode())

    def cookie_ok(self, header: str) -> bool:
        given = _cookie(header, COOKIE)
        return given is not None and \
            hmac.compare_digest(given.encode(), cookie_value(self.token).encode())


def _host_name(host: str) -> str:
    """``host`` without its port, brackets or final dot, lower-case."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


# ---------------------------------------------------------------------- the middleware
class WebSafety:
    """ASGI middleware, outermost of the API app: Host, Origin, token and request-shape
    checks (above), and the login URL. (``patterns serve`` serves webhook requests ahead of
    it, in :class:`patterns.server.ingest.WebhookFront`, after the same Host check:
    :func:`host_refusal`.)"""

    def __init__(self, app: Any, access: Access) -> None:
        self.app = app
        self.access = access
        # (parsing an address costs microseconds; a webhook under load repeats one Host)
        self._host_ok = functools.lru_cache(maxsize=256)(access.host_allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            status, message = refusal
            await _refuse(scope, receive, send, status, message)
            return
        if scope["type"] == "http" and scope["method"] == "GET" and _is_login(scope):
            await self.login(scope, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, message) if the request must be refused, else None."""
        access = self.access
        headers = _headers(scope)
        hosts = headers.get("host", [])
        host_header = hosts[0].strip().lower() if len(hosts) == 1 else ""
        refused = host_refusal(host_header, self._host_ok)
        if refused is not None:
            return refused
        path: str = scope["path"]
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "webhooks" and parts[2] and parts[3]:
            return None  # /webhooks/{app}/{token}: the token in the URL is the key
        origins = headers.get("origin", [])
        if origins and not all(access.origin_allowed(o, host_header) for o in origins):
            return 403, (f"requests from the web page at {origins[0]!r} are refused (its "
                         f"Origin is not this server's): open the Studio from this server, "
                         f"or start the server with --allow-origin ORIGIN to trust that page")
        method = scope.get("method", "GET")
        needs_token = path == "/api/v1" or path.startswith("/api/v1/") or \
            method not in SAFE_METHODS or scope["type"] == "websocket"
        if not needs_token:
            return None
        bearer = headers.get("authorization", [""])[0]
        if bearer and access.bearer_ok(bearer):
            return None
        if not any(access.cookie_ok(c) for c in headers.get("cookie", [])):
            return 401, (f"this server needs its token: send `Authorization: Bearer TOKEN`, "
                         f"or open the login URL printed when the server started; the token "
                         f"is {access.token_hint or 'the one given with --auth-token'}")
        if method not in SAFE_METHODS and not headers.get(REQUEST_HEADER) and \
                not _is_json(headers.get("content-type", [""])[0]):
            return 403, ("a change made with the login cookie must send the header "
                         "`X-Patterns-Request: 1` or a JSON body (a cross-site form "
                         "cannot); scripts should send `Authorization: Bearer TOKEN`")
        return None

    async def login(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = (query.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), self.access.token.encode()):
            await _respond(send, 401, {"error": "wrong token in the login URL: use the one "
                                                "printed when the server started, or "
                                                f"{self.access.token_hint or '--auth-token'}"})
            return
        target = (query.get("next") or [""])[0]
        if not _LOCAL_PATH.fullmatch(target) or target.startswith("//"):
            target = _home(scope)  # (never another site: no open redirect)
        cookie = (f"{COOKIE}={cookie_value(self.access.token)}; Path=/; HttpOnly; "
                  f"SameSite=Strict")
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", target.encode("latin-1")),
                                (b"set-cookie", cookie.encode()),
                                (b"cache-control", b"no-store"),
                                (b"referrer-policy", b"no-referrer"),
                                (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def host_refusal(host_header: str, allowed: Callable[[str], bool]) -> tuple[int, str] | None:
    """(403, why) unless ``host_header`` (the request's one Host, lower-cased; "" when it
    has none or several) names this server by ``allowed``."""
    host = _host_name(host_header)
    if host and allowed(host):
        return None
    return 403, (f"this server does not answer to the Host {host_header or '(none)'!r}"
                 f" (a web page using DNS rebinding would look like this): use "
                 f"http://127.0.0.1:PORT, or start the server with --allow-host "
                 f"{host or 'NAME'} if that name is really yours")


def _headers(scope: Scope) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return found


def _is_json(content_type: str) -> bool:
    essence = content_type.partition(";")[0].strip().lower()
    return essence == "application/json" or (essence.startswith("application/")
                                             and essence.endswith("+json"))


def _is_login(scope: Scope) -> bool:
    if scope["path"] == "/login":
        return True
    query = scope.get("query_string", b"")
    return scope["path"] == "/" and b"token=" in query and \
        "token" in parse_qs(query.decode("latin-1"))


def _home(scope: Scope) -> str:
    """Where a login lands: the Studio at ``/`` when the app has it, else the API docs."""
    app = scope.get("app")
    for route in getattr(app, "routes", ()):
        if getattr(route, "path", None) in ("/", ""):
            return "/"
    return "/api/v1/docs"


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int,
                  message: str) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect; closing before accepting answers 403
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    await _respond(send, status, {"error": message})


async def _respond(send: Send, status: int, doc: dict[str, Any]) -> None:
    body = json.dumps(doc).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="patterns"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
