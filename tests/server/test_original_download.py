"""The original devkit's `download SLUG DIR` and `list apps` against a real `patterns serve`:
the app's files land in DIR, a local file that differs is never overwritten without --force,
and the served apps are listed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.server.test_client import ok, patterns

APPS = Path(__file__).parent.parent / "apps"


def test_download_slug_into_a_folder_and_list_apps(tmp_path: Path, serve: Any) -> None:
    served = Path(shutil.copytree(APPS / "original_subgraph", tmp_path / "served"))
    server = serve(served)
    apps = json.loads(ok(patterns("list", "apps", "--server", server.url, "--json")))
    assert [a["slug"] for a in apps] == ["orders-subgraph"] and apps[0]["nodes"] == 3
    target = tmp_path / "copy"
    out = ok(patterns("download", "orders-subgraph", target, "--server", server.url))
    assert "downloaded orders-subgraph version" in out
    assert (target / "cleaning" / "keep_large.py").read_text() == \
        (served / "cleaning" / "keep_large.py").read_text()
    ok(patterns("run", target))  # the copy loads and runs
    (target / "report.sql").write_text("select 1 as mine\n")
    refused = patterns("download", "orders-subgraph", target, "--server", server.url)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "1 file(s) in" in refused.stderr and "report.sql" in refused.stderr
    assert (target / "report.sql").read_text() == "select 1 as mine\n"
    ok(patterns("download", "orders-subgraph", target, "--server", server.url, "--force"))
    assert "Table(\"clean_orders\")" in (target / "report.sql").read_text()
    missing = patterns("download", "no-such-app", tmp_path / "x", "--server", server.url)
    assert missing.returncode == 1 and "no-such-app" in missing.stderr
    assert not (tmp_path / "x").exists()
