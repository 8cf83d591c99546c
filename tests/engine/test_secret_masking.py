"""Secrets never leak: a node that prints, logs and raises its secret and connection, in
every form, leaves no trace of them in what a user can see or what Patterns keeps — the
`patterns run` console, the run record, `patterns runs --json`, `patterns logs`, the live
log, the REST API, and the store's bytes on disk. And the platform's files are private."""

from __future__ import annotations

import json
import os
import stat
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from patterns.engine.masking import MIN_LENGTH, Masker
from patterns.engine.secrets import SecretStore
from tests.cli.conftest import jsonl, ok, patterns
from tests.server.conftest import Server

#: A secret with quotes, a backslash and non-ASCII letters: its repr and JSON forms differ.
KEY = "sk_live'Q\"x\\y-é€-Zz9"
PASSWORD = "p@ss:w/rd'\"\\-ü9"
CONNECTION = {
    "user": "svc_reader",
    "password": PASSWORD,
    "url": f"postgresql://svc_reader:{quote(PASSWORD, safe='')}@db.internal:5432/prod",
    "options": {"tokens": ["nested-token-42"]},
    "port": 5432,
}
#: Printed next to the secrets: it must survive, so a missing secret means it was masked.
MARKER = "visible-marker-7c1e"

NODE = """
import json, logging, sys
from patterns import Connection, Parameter
key = Parameter("key", type=str)
db = Parameter("db", type=Connection("postgres"))
print("MARKER plain", key)
print("repr", repr(key), repr(key + '"'), repr(key + "'"), ascii(key))
print("json", json.dumps({"k": key}), json.dumps({"k": key}, ensure_ascii=False))
print("bytes", key.encode())
print("password", db["password"], repr(db["password"]))
print("url", db["url"])
print("connection", db, json.dumps(db))
print("nested", db["options"]["tokens"][0])
logging.warning("logged %s and %r", key, db["password"])
print("stderr", key, file=sys.stderr)
raise ValueError(f"bad key {key} for {db['url']}")
"""

GRAPH = """
title: Masking
functions:
  - node_file: leak.py
    id: leak0001
    trigger: manual
    parameter_values:
      key: ${{ api_key }}
      db: ${{ connection.warehouse }}
"""


def forms(value: str) -> set[str]:
    """Every way the node above writes ``value``, as text."""
    return {value, repr(value)[1:-1], *(_quoted(value, q) for q in "'\""),
            ascii(value)[1:-1], json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1], quote(value, safe=""),
            quote_plus(value), repr(value.encode())[2:-1]}


def _quoted(value: str, quote_char: str) -> str:
    """``repr()``'s body when the quotes are ``quote_char`` (forced by adding one)."""
    shown = repr(value + quote_char)
    body = shown[1:-1]  # the added character ends it, escaped when it is the quote used
    return body[:-2] if shown[0] == quote_char else body[:-1]


SECRETS = [KEY, PASSWORD, CONNECTION["url"], CONNECTION["user"], "nested-token-42"]
LEAKS = {form for secret in SECRETS for form in forms(secret)}


def assert_no_leak(where: str, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    found = [form for form in LEAKS if form.encode() in data]
    assert not found, f"{where} shows a secret as {found}"


def leaky_app(root: Path) -> Path:
    SecretStore().set("api_key", KEY)
    SecretStore().set("connection.warehouse", json.dumps(CONNECTION))
    root.mkdir(parents=True)
    (root / "graph.yml").write_text(textwrap.dedent(GRAPH))
    (root / "leak.py").write_text(textwrap.dedent(NODE).replace("MARKER", MARKER))
    return root


def test_a_leaking_node_leaves_no_secret_anywhere(tmp_path: Path) -> None:
    app = leaky_app(tmp_path / "app")
    console = patterns("run", app, "--node", "leak.py")
    assert console.returncode == 1 and "bad key ****" in console.stdout + console.stderr
    assert_no_leak("`patterns run`", console.stdout + console.stderr)

    (run,) = json.loads(ok(patterns("runs", app, "--json")).stdout)
    assert run["status"] == "failed" and run["error"].startswith("ValueError: bad key ****")
    assert "bad key ****" in run["traceback"]
    assert run["parameters"] == {"key": "****", "db": "****"}
    assert_no_leak("`patterns runs --json`", json.dumps(run, ensure_ascii=False))

    logs = ok(patterns("logs", app)).stdout
    assert f"{MARKER} plain ****" in logs and "logged **** and '****'" in logs
    assert "password ****" in logs and "url ****" in logs and "nested ****" in logs
    assert_no_leak("`patterns logs`", logs)
    doc = ok(patterns("logs", app, "--run", run["id"], "--json")).stdout
    assert_no_leak("`patterns logs --json`", doc)

    live = app / ".patterns" / "store.duckdb.live.jsonl"
    events = jsonl(live.read_text(encoding="utf-8"))
    assert any(e.get("x") == f"{MARKER} plain ****" for e in events)
    assert_no_leak("the live log", live.read_bytes())

    store = app / ".patterns" / "store.duckdb"
    with duckdb.connect(str(store)) as con:
        con.execute("CHECKPOINT")
    data = store.read_bytes()
    assert MARKER.encode() in data  # (the grep can see logs in the file: it would see a leak)
    assert_no_leak("the store file", data)


def test_the_rest_api_shows_no_secret(tmp_path: Path) -> None:
    app = leaky_app(tmp_path / "leaky")
    server = Server([app])
    try:
        queued = server.post("/apps/masking/nodes/leak.py/trigger", json={})
        assert queued.status_code == 202, queued.text
        run = server.wait_for(lambda: next((r for r in server.runs("masking")
                                            if r["status"] == "failed"), None),
                              what="the leaking run to fail")
        detail = server.get(f"/apps/masking/runs/{run['id']}")
        assert detail["error"].startswith("ValueError: bad key ****")
        logs = server.get(f"/apps/masking/runs/{run['id']}/logs")
        assert any(line["text"] == f"{MARKER} plain ****" for line in logs["lines"])
        stream = server.http.get(server.api(f"/apps/masking/runs/{run['id']}/logs/stream"),
                                 timeout=30).text
        assert f"{MARKER} plain ****" in stream
        for where, shown in (("GET /runs", server.runs("masking")), ("GET /runs/ID", detail),
                             ("GET /runs/ID/logs", logs)):
            assert_no_leak(where, json.dumps(shown, ensure_ascii=False))
            assert_no_leak(where, json.dumps(shown))
        assert_no_leak("the log stream", stream)
        assert_no_leak("the server's console", "".join(server.output))
        # Private files while it serves, too (its address file among them).
        assert (app / ".patterns" / "server.json").is_file()
        assert_private(app / ".patterns")
    finally:
        server.stop()
    assert_private(app / ".patterns")


def assert_private(folder: Path) -> None:
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    files = [p for p in folder.iterdir() if p.is_file()]
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, (path, oct(path.stat().st_mode))


def test_platform_files_are_private_after_a_run(tmp_path: Path, patterns_home: Path) -> None:
    app = leaky_app(tmp_path / "app")
    patterns("run", app, "--node", "leak.py")
    folder = app / ".patterns"
    # As an older version left them: readable by all.
    for path in (patterns_home, folder):
        os.chmod(path, 0o755)
    for path in (patterns_home / "secret.key", folder / "store.duckdb",
                 folder / "store.duckdb.live.jsonl"):
        os.chmod(path, 0o644)
    patterns("run", app, "--node", "leak.py")
    assert {"store.duckdb", "store.duckdb.live.jsonl"} <= {p.name for p in folder.iterdir()}
    assert_private(folder)
    assert_private(patterns_home)
    assert {"secret.key", "secrets.enc"} <= {p.name for p in patterns_home.iterdir()}


def test_the_write_ahead_log_is_private_as_duckdb_makes_it_again(tmp_path: Path) -> None:
    from patterns.store.duckdb import DuckDBStore

    store = DuckDBStore(tmp_path / ".patterns" / "store.duckdb")
    try:
        for n in range(3):  # each checkpoint removes the log; the next write makes it anew
            with store.transaction() as tx:
                tx.logs.save(str(n), "x", False)
            assert store.wal.exists()
            assert stat.S_IMODE(store.wal.stat().st_mode) == 0o600
            store.cursor().execute("CHECKPOINT")
            assert not store.wal.exists()
    finally:
        store.close()
    assert_private(tmp_path / ".patterns")


def test_bad_secrets_are_refused_without_showing_their_value(app_runner: Any) -> None:
    import pytest

    from patterns.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        SecretStore().set("connection.bad", '["hunter2-list"]')
    assert "hunter2-list" not in str(refused.value) and "JSON object" in str(refused.value)
    SecretStore().set("count", "not-a-number-hunter2")
    app = app_runner({"n.py": """
        from patterns import Parameter
        Parameter("n", type=int)
    """}, [], functions=[{"node_file": "n.py", "id": "n0000001",
                         "parameter_values": {"n": "${{ count }}"}}])
    record = app.run_node("n0000001")
    assert record.status == "failed"
    assert "secret 'count'" in record.error and "not shown" in record.error
    assert "hunter2" not in record.error


def test_every_form_of_a_secret_is_masked_and_short_ones_only_alone() -> None:
    mask = Masker([KEY, json.dumps(CONNECTION), "abc"])
    for secret in SECRETS:
        for form in forms(secret):
            assert mask(f"<{form}>") == "<****>", form
    # Escaped twice: a JSON log line of a message holding a repr, the repr of JSON.
    assert mask(json.dumps({"msg": f"key={KEY!r}"})) == '{"msg": "key=\'****\'"}'
    assert mask(repr(json.dumps({"k": KEY}))) == "'{\"k\": \"****\"}'"
    # A password inside a URL of the connection is masked on its own too.
    assert mask(f"postgres://other:{quote(PASSWORD, safe='')}@h") == "postgres://other:****@h"
    # Values shorter than MIN_LENGTH are masked only when they are all there is.
    assert len("abc") < MIN_LENGTH
    assert mask("abc") == "****" and mask("  abc ") == "  **** "
    assert mask("abcdef") == "abcdef"
    assert mask("port 5432") == "port 5432"  # (not a string field: not a secret)


def test_a_url_password_and_each_line_of_a_key_are_masked_on_their_own() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END PRIVATE KEY-----"
    mask = Masker([json.dumps({"dsn": "postgresql://app:s3cr%2Ft@db/prod", "key": pem})])
    assert mask("connecting with password s3cr/t") == "connecting with password ****"
    assert mask("raw s3cr%2Ft") == "raw ****"
    assert [mask(line) for line in pem.splitlines()] == ["****"] * 3
    assert mask(f"key={pem!r}") == "key='****'"


_TEXT = st.text(st.characters(exclude_characters="*", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(secrets=st.lists(st.text(st.characters(exclude_characters="*",
                                              exclude_categories=("Cs",)),
                                min_size=MIN_LENGTH, max_size=12), min_size=1, max_size=4),
       before=_TEXT, after=_TEXT, which=st.integers(min_value=0))
def test_no_form_of_any_secret_survives_masking(secrets: list[str], before: str, after: str,
                                                which: int) -> None:
    mask = Masker(secrets)
    secret = secrets[which % len(secrets)]
    for form in forms(secret):
        shown = mask(before + form + after)
        assert "****" in shown
        assert not any(f in shown for s in secrets for f in forms(s) if len(f) >= MIN_LENGTH)
