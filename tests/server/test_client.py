"""The devkit as a client: the same commands go through a running server when one serves
the app (or --server names one), and use the store otherwise."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import requests

from tests.server.conftest import COMMAND, write_app

GRAPH = """
title: Client app
slug: client-app
functions:
  - webhook: inbox
    id: inbox001
  - node_file: greet.py
    id: greet001
    trigger: manual
stores:
  - table: inbox
  - table: greetings
"""

GREET = """
from patterns import Parameter, Table
name = Parameter("name", type=str, default="world")
Table("greetings", "w").append({"text": f"hello {name}"})
print(f"greeted {name}")
"""


def patterns(*args: Any, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1",
                                            **(env or {})})


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_commands_go_through_the_server_serving_the_app(tmp_path: Path, serve: Any) -> None:
    root = write_app(tmp_path / "client", GRAPH, {"greet.py": GREET})
    server = serve(root)
    # trigger queues on the server (no --server needed: the app's server.json says where)
    out = ok(patterns("trigger", root, "greet.py", "--param", "name=ada"))
    assert f"queued a run of greet.py on {server.url}" in out
    server.wait_for(lambda: any(r["status"] == "succeeded" for r in server.runs("client-app")))
    runs = ok(patterns("runs", root))
    assert "greet" in runs and "succeeded" in runs
    logs = ok(patterns("logs", root, "--node", "greet.py"))
    assert "greeted ada" in logs
    shown = ok(patterns("table", "show", root, "greetings"))
    assert "hello ada" in shown  # through the engine of the server, as without one
    # list webhooks gives full URLs that work
    hooks = json.loads(ok(patterns("list", "webhooks", root, "--json")))
    (hook,) = hooks
    posted = requests.post(hook["url"], json={"msg": "hi"}, timeout=30)
    assert posted.status_code == 200
    assert ok(patterns("list", "webhooks", root)).startswith(f"inbox: POST {server.url}/webhooks/")
    # secrets go to the server's home
    ok(patterns("create", "secret", "api_key", "k-123", "--server", server.url))
    assert "api_key" in server.get("/secrets")["names"]


def test_without_a_server_the_same_commands_use_the_store(tmp_path: Path) -> None:
    root = write_app(tmp_path / "client", GRAPH, {"greet.py": GREET})
    out = ok(patterns("trigger", root, "greet.py", "--param", "name=bob"))
    assert "greeted bob" in out and "succeeded" in out
    assert "hello bob" in ok(patterns("table", "show", root, "greetings"))
    listed = ok(patterns("list", "webhooks", root))
    assert "inbox: POST <server>/webhooks/client-app/" in listed
    unreachable = patterns("runs", root, "--server", "http://127.0.0.1:9")
    assert unreachable.returncode == 1 and "no server answers at" in unreachable.stderr


def test_upload_and_download_versions_with_conflicts(tmp_path: Path, serve: Any) -> None:
    served = write_app(tmp_path / "served", GRAPH, {"greet.py": GREET})
    server = serve(served)
    mine = tmp_path / "mine"
    shutil.copytree(served, mine, ignore=shutil.ignore_patterns(".patterns"))
    (mine / "notes.txt").write_text("local only\n")
    out = ok(patterns("download", mine, "--server", server.url))
    assert "0 file(s) written" in out
    assert (mine / "notes.txt").exists()  # download never deletes

    (mine / "greet.py").write_text(GREET.replace("hello", "bonjour"))
    uploaded = ok(patterns("upload", mine, "--server", server.url, "--yes"))
    assert "-Table(\"greetings\", \"w\").append({\"text\": f\"hello {name}\"})" in uploaded
    assert "+Table(\"greetings\", \"w\").append({\"text\": f\"bonjour {name}\"})" in uploaded
    assert "bonjour" in (served / "greet.py").read_text()
    assert (served / "notes.txt").exists()
    # the server runs the new version
    server.post("/apps/client-app/nodes/greet.py/trigger", json={"parameters": {"name": "eve"}})
    server.wait_for(lambda: any(r["text"] == "bonjour eve"
                                for r in server.rows("client-app", "greetings")))

    # someone else changes the server's version: my next upload is refused without --force
    (served / "greet.py").write_text(GREET.replace("hello", "hola"))
    (mine / "greet.py").write_text(GREET.replace("hello", "ciao"))
    refused = patterns("upload", mine, "--server", server.url, "--yes")
    assert refused.returncode == 1 and "changed since you last downloaded" in refused.stderr
    assert "hola" in (served / "greet.py").read_text()
    ok(patterns("upload", mine, "--server", server.url, "--yes", "--force"))
    assert "ciao" in (served / "greet.py").read_text()


def test_an_invalid_upload_is_refused_and_the_server_keeps_its_version(
        tmp_path: Path, serve: Any) -> None:
    served = write_app(tmp_path / "served", GRAPH, {"greet.py": GREET})
    server = serve(served)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("graph.yml", "title: Broken\nfunctions:\n  - node_file: missing.py\n")
    response = server.post("/apps/client-app/upload", data=buffer.getvalue())
    assert response.status_code == 400
    assert "missing.py" in response.json()["error"]
    assert "Client app" in (served / "graph.yml").read_text()
    bad_zip = server.post("/apps/client-app/upload", data=b"not a zip")
    assert bad_zip.status_code == 400 and "not a zip" in bad_zip.json()["error"]
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    escaped = server.post("/apps/client-app/upload", data=evil.getvalue())
    assert escaped.status_code == 400 and "unsafe path" in escaped.json()["error"]
    assert not (served.parent / "escape.txt").exists()


def test_download_refuses_files_outside_the_app(tmp_path: Path) -> None:
    import pytest

    from patterns.cli.client import _inside
    from patterns.errors import ConfigError

    root = tmp_path / "app"
    root.mkdir()
    assert _inside(root, "lib/x.py") == (root / "lib" / "x.py").resolve()
    for name in ("../escape.txt", "/etc/passwd", "a/../../b", ".patterns/store.duckdb"):
        with pytest.raises(ConfigError, match="outside the app folder"):
            _inside(root, name)


def test_logs_follow_through_the_server_shows_every_new_run(tmp_path: Path,
                                                            serve: Any) -> None:
    import signal
    import threading
    import time

    root = write_app(tmp_path / "client", GRAPH, {"greet.py": GREET})
    server = serve(root)
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    follower = subprocess.Popen([*COMMAND, "logs", str(root), "-f"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(follower.stdout or []), daemon=True).start()
    server.wait_for(lambda: any("following the runs" in line for line in lines))
    for name in ("ann", "bo"):
        server.post("/apps/client-app/nodes/greet.py/trigger", json={"parameters": {"name": name}})
        server.wait_for(lambda n=name: any(f"greet | greeted {n}" in line for line in lines),
                        what=f"the run for {name}")
    server.wait_for(lambda: sum("■ greet succeeded" in line for line in lines) == 2)
    follower.send_signal(signal.SIGINT)
    assert follower.wait(timeout=10) == 0
    time.sleep(0.1)
