"""A web page the user visits must not drive the server (docs/server.md, "Security").

Each test sends over loopback exactly what a hostile page can make a browser send: a
``text/plain`` or form POST (no CORS preflight), a sandboxed frame's ``Origin: null``, a
stolen-cookie request, a DNS-rebinding ``Host`` — and checks both the answer and that
nothing happened (no run, no file, no secret). Then the ways in that must keep working: the
CLI with no flags, the login URL and its cookie, webhooks from anyone holding their URL.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.server.conftest import Server, write_app
from tests.server.test_client import ok, patterns

GRAPH = """
title: Safe app
slug: safe
functions:
  - node_file: touch.py
    id: touch001
    trigger: manual
  - webhook: inbox
    id: inbox001
stores:
  - table: inbox
"""

#: The node leaves a line in a file outside the app each time it runs.
TOUCH = """
print("ran")
"""

EVIL = "https://evil.example"
TRIGGER = "/apps/safe/nodes/touch.py/trigger"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return write_app(tmp_path / "safe", GRAPH,
                     {"touch.py": TOUCH})


def ran(server: Any) -> bool:
    """touch.py has run (and succeeded) on ``server``."""
    return any(r["status"] == "succeeded" for r in server.runs("safe"))


def evil_zip() -> bytes:
    """An upload a hostile page would like to install: code of its own."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("graph.yml", "title: Owned\nfunctions:\n  - node_file: own.py\n")
        zf.writestr("own.py", "import os; os.system('id > /tmp/owned')\n")
    return buffer.getvalue()


def assert_untouched(server: Server, root: Path) -> None:
    """Nothing a refused request could have done happened."""
    assert server.get("/apps/safe/queue") == []
    assert server.runs("safe") == []
    assert "Safe app" in (root / "graph.yml").read_text() and not (root / "own.py").exists()
    assert not (root / ".patterns" / "versions").exists()
    assert server.get("/secrets")["names"] == []


def test_a_hostile_page_cannot_upload_trigger_or_set_secrets(app: Path, serve: Any) -> None:
    server = serve(app)
    page = {"Origin": EVIL, "Content-Type": "text/plain;charset=UTF-8"}
    form = {"Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"}
    sandboxed = {"Origin": "null", "Content-Type": "text/plain;charset=UTF-8"}
    for headers in (page, form, sandboxed):
        for path, body in [(TRIGGER, b'{"parameters": {}}'),
                           ("/apps/safe/upload?force=true", evil_zip())]:
            refused = requests.post(server.api(path), data=body, headers=headers, timeout=30)
            assert refused.status_code == 403, (headers, path, refused.text)
            assert "Origin" in refused.json()["error"]
        put = requests.put(server.api("/secrets/stolen"), data='{"value": "x"}',
                           headers=headers, timeout=30)
        assert put.status_code == 403
    # A page that manages to send no Origin at all still has no token.
    bare = requests.post(server.api(TRIGGER), data=b"{}", timeout=30,
                         headers={"Content-Type": "text/plain"})
    assert bare.status_code == 401
    assert "server-token" in bare.json()["error"]  # says where the token is
    # Reading is refused too (a page could not read the answer anyway: no CORS headers).
    for headers in ({"Origin": EVIL}, {}):
        read = requests.get(server.api("/apps/safe/runs"), headers=headers, timeout=30)
        assert read.status_code in (401, 403)
        assert "access-control-allow-origin" not in read.headers
    assert_untouched(server, app)
    # The same trigger with the token runs, once: the refused ones queued nothing.
    assert server.post(TRIGGER, json={}).status_code == 202
    server.wait_for(lambda: ran(server), what="the run")
    server.wait_for(lambda: server.get("/apps/safe/queue") == [], what="the queue to empty")
    assert [r["status"] for r in server.runs("safe")] == ["succeeded"]


def test_a_login_cookie_works_only_with_a_non_simple_request(app: Path, serve: Any) -> None:
    server = serve(app)
    wrong = requests.get(f"{server.url}/login?token=guess", allow_redirects=False, timeout=30)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    login = requests.get(f"{server.url}/?token={server.token}", allow_redirects=False,
                         timeout=30)
    assert login.status_code == 303 and server.token not in login.headers["location"]
    # A login URL cannot send the browser to another site (no open redirect).
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example", "/a\r\nX: y"):
        away = requests.get(f"{server.url}/login", allow_redirects=False, timeout=30,
                            params={"token": server.token, "next": target})
        assert away.headers["location"] == login.headers["location"], target
    inside = requests.get(f"{server.url}/login?token={server.token}&next=/api/v1/apps",
                          allow_redirects=False, timeout=30)
    assert inside.headers["location"] == "/api/v1/apps"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert server.token not in cookie  # the cookie is derived from the token, not it
    browser = requests.Session()
    browser.cookies.update(login.cookies)
    assert browser.get(server.api("/apps/safe/runs"), timeout=30).status_code == 200
    # A page of another origin (even another port of localhost, which is the same site and
    # so gets the cookie) cannot use it: refused on Origin ...
    other_port = f"http://localhost:{int(server.url.rsplit(':', 1)[1]) + 1}"
    for origin in (EVIL, other_port, "null"):
        posted = browser.post(server.api(TRIGGER), data="{}", timeout=30,
                              headers={"Origin": origin, "Content-Type": "text/plain"})
        assert posted.status_code == 403, origin
    # ... and, where no Origin is sent, on the request's shape (a form cannot set a header).
    for content_type in ("text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x"):
        posted = browser.post(server.api(TRIGGER), data="{}", timeout=30,
                              headers={"Content-Type": content_type})
        assert posted.status_code == 403
        assert "X-Patterns-Request" in posted.json()["error"]
    upload = browser.post(server.api("/apps/safe/upload?force=true"), data=evil_zip(),
                          timeout=30)
    assert upload.status_code == 403
    assert_untouched(server, app)
    # The Studio's way: its own origin, and the header or a JSON body (or both).
    studio = browser.post(server.api(TRIGGER), json={}, timeout=30,
                          headers={"Origin": server.url, "X-Patterns-Request": "1"})
    assert studio.status_code == 202, studio.text
    bodiless = browser.post(server.api("/apps/safe/runs/NOPE/cancel"), timeout=30,
                            headers={"X-Patterns-Request": "1"})
    assert bodiless.status_code == 404  # let through, to an answer about the run
    assert browser.put(server.api("/secrets/api_key"), json={"value": "k"},
                       timeout=30).status_code == 200
    assert server.get("/secrets")["names"] == ["api_key"]
    server.wait_for(lambda: ran(server), what="the run")


def test_a_rebinding_host_is_refused_on_every_route(app: Path, serve: Any) -> None:
    server = serve(app)
    port = server.url.rsplit(":", 1)[1]
    (hook,) = server.get("/apps/safe/webhooks")
    rebound = {"Host": f"evil.example:{port}"}
    for method, path in [("GET", "/api/v1/secrets"), ("GET", "/api/v1/apps/safe/runs"),
                         ("GET", "/api/v1/openapi.json"), ("GET", "/api/v1/docs"),
                         ("GET", f"/login?token={server.token}"), ("GET", "/"),
                         ("POST", hook["path"])]:
        # Without the token (what a rebinding page has) and even with it.
        for auth in ({}, {"Authorization": f"Bearer {server.token}"}):
            answer = requests.request(method, server.url + path, json={"n": 1}, timeout=30,
                                      headers={**rebound, **auth})
            assert answer.status_code == 403, (method, path, answer.text)
            assert "--allow-host evil.example" in answer.json()["error"]
            assert "set-cookie" not in answer.headers
    put = requests.put(server.api("/secrets/stolen"), json={"value": "x"}, timeout=30,
                       headers={**rebound, "Authorization": f"Bearer {server.token}"})
    assert put.status_code == 403
    assert_untouched(server, app)
    assert server.rows("safe", "inbox") == []  # the webhook took nothing
    # Loopback names in any spelling are this server.
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
        answer = server.http.get(server.api("/apps"), headers={"Host": host}, timeout=30)
        assert answer.status_code == 200, host


def test_allow_host_and_allow_origin_let_a_proxy_and_a_studio_in(app: Path,
                                                                  serve: Any) -> None:
    server = serve(app, args=("--allow-host", "patterns.internal",
                              "--allow-origin", "https://studio.internal"))
    named = server.http.get(server.api("/apps"), headers={"Host": "patterns.internal"},
                            timeout=30)
    assert named.status_code == 200
    assert server.http.get(server.api("/apps"), headers={"Host": "other.internal"},
                           timeout=30).status_code == 403
    trusted = server.post(TRIGGER, json={}, headers={"Origin": "https://studio.internal"})
    assert trusted.status_code == 202
    assert server.post(TRIGGER, json={}, headers={"Origin": EVIL}).status_code == 403


def test_webhooks_take_records_from_anyone_with_their_url(app: Path, serve: Any) -> None:
    server = serve(app)
    (hook,) = server.get("/apps/safe/webhooks")
    # What a page holding the URL can send: a text/plain POST from its origin, no token.
    posted = requests.post(server.url + hook["path"], data='{"n": 1}', timeout=30,
                           headers={"Origin": EVIL, "Content-Type": "text/plain"})
    assert posted.status_code == 200, posted.text
    assert "access-control-allow-origin" not in posted.headers  # it cannot read the answer
    assert [r["n"] for r in server.rows("safe", "inbox")] == [1]
    guessed = requests.post(f"{server.url}/webhooks/safe/guess", json={"n": 2}, timeout=30)
    assert guessed.status_code == 404


def test_no_cors_preflight_is_ever_granted(app: Path, serve: Any) -> None:
    server = serve(app)
    for path in ("/api/v1/apps/safe/nodes/touch.py/trigger", "/api/v1/secrets/x"):
        preflight = requests.options(server.url + path, timeout=30, headers={
            "Origin": EVIL, "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert preflight.status_code == 403
        assert not [h for h in preflight.headers if h.lower().startswith("access-control")]


def test_the_token_is_made_once_kept_private_and_used_by_the_cli(
        app: Path, serve: Any, patterns_home: Path) -> None:
    server = serve(app)
    token_file = patterns_home / "server-token"
    assert token_file.read_text().strip() == server.token and len(server.token) >= 40
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    served = json.loads((app / ".patterns" / "server.json").read_text())
    assert server.token not in json.dumps(served)  # the app folder never holds it
    # The CLI finds the server and its token by itself.
    assert f"queued a run of touch.py on {server.url}" in ok(patterns("trigger", app,
                                                                    "touch.py"))
    server.wait_for(lambda: ran(server), what="the run")
    ok(patterns("create", "secret", "api_key", "k-1", "--server", server.url))
    assert server.get("/secrets")["names"] == ["api_key"]
    # A wrong token from the environment: one red line that says what to do.
    # (`runs` reaches a served app's store through its engine; the API with --server.)
    refused = patterns("runs", app, "--server", server.url,
                       env={"PATTERNS_AUTH_TOKEN": "wrong"})
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    error = refused.stderr.strip()
    assert len(error.splitlines()) == 1 and "PATTERNS_AUTH_TOKEN" in error
    # The same token after a restart, so the CLI and logged-in browsers keep working.
    server.stop()
    again = serve(app)
    assert again.token == server.token


def test_a_fresh_home_is_made_private(tmp_path: Path, app: Path) -> None:
    home = tmp_path / "new-home"
    server = Server([app], env={"PATTERNS_HOME": str(home)})
    try:
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert stat.S_IMODE((home / "server-token").stat().st_mode) == 0o600
    finally:
        server.stop()


def test_the_cli_sends_the_home_token_only_to_this_machine(
        monkeypatch: pytest.MonkeyPatch, patterns_home: Path) -> None:
    from patterns.server.security import client_token, server_token

    monkeypatch.delenv("PATTERNS_AUTH_TOKEN", raising=False)
    token = server_token()
    assert server_token() == token  # made once
    for url in ("http://127.0.0.1:8000", "http://localhost:9", "http://[::1]:8000"):
        assert client_token(url) == token
    assert client_token("https://patterns.example.com") is None  # never leaked elsewhere
    monkeypatch.setenv("PATTERNS_AUTH_TOKEN", "given")
    assert client_token("https://patterns.example.com") == "given"
