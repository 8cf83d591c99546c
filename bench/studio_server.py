"""What the Studio's benchmarks share: a real ``patterns serve`` of a throwaway app on
loopback, and Debian's chromium driven by Playwright (as tests/studio does), with a context
logged in by the server's cookie and an empty cache."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Served:
    url: str
    token: str
    root: Path
    output: list[str] = field(default_factory=list)

    def http(self) -> Any:
        import requests

        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        return session


@contextmanager
def served(graph: str, files: dict[str, str]) -> Iterator[Served]:
    """``patterns serve`` of an app of ``graph`` and ``files`` on a free loopback port."""
    from patterns.engine.sandbox import available

    with tempfile.TemporaryDirectory(prefix="patterns-bench-") as tmp:
        root = Path(tmp) / "app"
        root.mkdir()
        (root / "graph.yml").write_text(textwrap.dedent(graph))
        for name, source in files.items():
            (root / name).write_text(textwrap.dedent(source))
        env = {**os.environ, "PATTERNS_HOME": str(Path(tmp) / "home")}
        if not available():
            env["PATTERNS_NO_SANDBOX"] = "1"
        proc = subprocess.Popen([sys.executable, "-m", "patterns.cli.main", "serve", str(root),
                                 "--port", "0"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        output: list[str] = []
        threading.Thread(target=lambda: output.extend(proc.stdout or ()), daemon=True).start()
        try:
            deadline = time.time() + 120
            while time.time() < deadline:
                text = "".join(output)
                found = re.search(r"on (http://\S+)", text)
                login = re.search(r"/login\?token=(\S+)", text)
                if found and login:
                    yield Served(found.group(1), login.group(1), root, output)
                    return
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
            raise RuntimeError(f"patterns serve did not start:\n{''.join(output)}")
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless chromium (Debian's; never a downloaded one)."""
    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("the Studio benchmarks need Debian's chromium: apt-get install -y "
                           "chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


def logged_in(browser: Any, server: Served) -> Any:
    """A new context (empty cache) holding the server's login cookie."""
    from urllib.parse import urlparse

    from patterns.server.security import COOKIE, cookie_value

    context = browser.new_context(viewport={"width": 1366, "height": 768})
    host = urlparse(server.url)
    context.add_cookies([{"name": COOKIE, "value": cookie_value(server.token),
                          "domain": host.hostname, "path": "/", "httpOnly": True,
                          "sameSite": "Strict"}])
    return context
