"""The Studio in a real browser: Debian's chromium driven by Playwright, against a real
`patterns serve` of a real app on loopback (the server fixture of tests/server).

The Studio must be built (scripts/build_studio; scripts/test does it) and chromium installed
(scripts/test installs it with apt). Each test saves a screenshot of its page under
``test-output/studio/`` (or ``$PATTERNS_TEST_OUTPUT/studio/``).
"""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from patterns.server.studio import DIST
from tests.server.conftest import Server, write_app

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("PATTERNS_TEST_OUTPUT", ROOT / "test-output")) / "studio"
ROWS = 250

GRAPH = """
title: Studio test app
slug: studio-test
functions:
  - node_file: gen.py
    id: gen00001
    title: Generate events
    display: {x: 40, y: 40}
  - node_file: slow.py
    id: slow0001
    title: Slow steps
    trigger: manual
    display: {style: form}
  - node_file: editable.py
    id: edit0001
    title: Editable node
    trigger: manual
  - node_file: broken.py
    id: brok0001
    title: Broken node
    trigger: manual
  - node_file: by_group.json
    id: chart001
    title: Events by group
    chart_input: events
  - node_file: not_vega.json
    id: chart002
    title: Not a chart
    chart_input: events
  - webhook: hooks
    id: hook0001
    title: Incoming hooks
stores:
  - table: events
  - table: slow_out
  - table: edited
  - table: hooks
docs:
  - title: About this app
    markdown: |
      # Read me
      Events are **generated**.
      <img src="x" onerror="window.__pwned = 1"><script>window.__pwned = 2</script>
dashboards:
  - title: Overview
    items:
      - {node: by_group.json, x: 0, y: 0, w: 6}
      - {node: missing.json, x: 6, y: 0, w: 6}
"""

FILES = {
    "not_vega.json": """{"mark": "no such mark", "encoding": {"x": {"field": "n"}}}""",
    "gen.py": f"""
        from patterns import State, Table

        State().set_value("generated", {ROWS})
        events = Table("events", "w")
        for n in range({ROWS}):
            events.append({{"n": n, "name": f"item {{n:03d}}", "grp": "abc"[n % 3]}})
        print("generated {ROWS} events")
    """,
    "slow.py": """
        import time
        from patterns import Parameter, Table

        label = Parameter("label", type=str, default="plain")
        out = Table("slow_out", "w")
        print(f"step one for {label}", flush=True)
        time.sleep(2.0)
        out.append({"label": label})
        print(f"step two done for {label}", flush=True)
    """,
    "editable.py": """
        from patterns import Table

        edited = Table("edited", "w")
        edited.append({"version": 1})
    """,
    "broken.py": """
        print("about to fail")
        raise RuntimeError("the API said no")
    """,
    "by_group.json": """
        {"$schema": "https://vega.github.io/schema/vega-lite/v5.json",
         "mark": "bar",
         "encoding": {"x": {"field": "grp", "type": "nominal"},
                      "y": {"aggregate": "count", "type": "quantitative"}}}
    """,
}


@pytest.fixture(scope="session")
def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise AssertionError("Debian's chromium is not installed: `apt-get install -y chromium` "
                             "(scripts/test does it)")
    if not (DIST / "index.html").is_file():
        raise AssertionError(f"the Studio is not built in {DIST}: run scripts/build_studio")
    return found


@pytest.fixture(scope="package")
def studio_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A served app with `events` generated (its first run), and its server."""
    home = tmp_path_factory.mktemp("patterns-home")
    root = write_app(tmp_path_factory.mktemp("apps") / "studio_app", GRAPH,
                     {k: textwrap.dedent(v) for k, v in FILES.items()})
    server = Server([root], env={"PATTERNS_HOME": str(home)})
    try:
        server.wait_for(lambda: any(r["status"] == "succeeded"
                                    for r in server.runs("studio-test", "gen00001")),
                        timeout=90, what="the first run of gen.py")
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        from playwright.sync_api import expect

        # (as the pages' own 20 s: a React Flow node stayed hidden, unmeasured, past
        # expect's default 5 s once in a full suite on 2 busy cores)
        expect.set_options(timeout=20_000)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: object, studio_app: Server, request: pytest.FixtureRequest) -> Iterator[object]:
    """A logged-in page (the login URL, as a user opens it); a screenshot when the test ends."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{studio_app.url}/login?token={studio_app.token}")
    yield page
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, f"the page threw: {errors}"
