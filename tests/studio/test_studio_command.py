"""``patterns studio APP``: serves the app, prints the Studio's URL and opens the browser on
it, logged in (the browser is $BROWSER, as Python's webbrowser module takes it: here a script
that writes down the URL it was given)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from tests.server.conftest import sandbox_env, write_app

GRAPH = """
title: Opened app
slug: opened
functions:
  - node_file: hello.py
    trigger: manual
"""


def start(root: Path, home: Path, *args: str, env: dict[str, str] | None = None
          ) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "patterns.cli.main", "studio", str(root), "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **sandbox_env(), "PATTERNS_HOME": str(home), **(env or {})})
    output: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        output.extend(proc.stdout)

    threading.Thread(target=read, daemon=True).start()
    return proc, output


def wait_for(what: str, found: object, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if callable(found) and found():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def studio_url(output: list[str]) -> str | None:
    return next((m.group(1) for line in list(output)
                 if (m := re.match(r"Studio: (http://\S+)", line))), None)


def test_studio_serves_prints_and_opens_the_browser_logged_in(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app", GRAPH, {"hello.py": "print('hi')\n"})
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\necho \"$1\" > {opened}\n")
    browser.chmod(0o755)
    proc, output = start(root, tmp_path / "home", env={"BROWSER": str(browser)})
    try:
        wait_for("the Studio's URL", lambda: studio_url(output))
        url = studio_url(output)
        assert url is not None and url.endswith("/apps/opened")
        wait_for("the browser to be opened", opened.exists)
        login = opened.read_text().strip()
        assert login.startswith(url.removesuffix("/apps/opened") + "/login?token=")
        browser_session = requests.Session()
        landed = browser_session.get(login, timeout=30)  # (follows the login's redirect)
        assert landed.status_code == 200 and landed.url == url
        assert '<div id="root">' in landed.text  # the Studio's page
        assert browser_session.get(url.replace("/apps/opened", "/api/v1/apps/opened/graph"),
                                   timeout=30).json()["title"] == "Opened app"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def test_no_open_only_prints_the_url(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app", GRAPH, {"hello.py": "print('hi')\n"})
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\necho \"$1\" > {opened}\n")
    browser.chmod(0o755)
    proc, output = start(root, tmp_path / "home", "--no-open", env={"BROWSER": str(browser)})
    try:
        wait_for("the Studio's URL", lambda: studio_url(output))
        url = studio_url(output)
        assert url is not None
        assert requests.get(url, timeout=30).status_code == 200  # (the page; data needs login)
        time.sleep(0.5)  # (nothing should come: give a wrongly started browser its chance)
        assert not opened.exists()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
