"""`patterns download --app SLUG DIR` fetches an app that does not exist here yet from a real
`patterns serve`; the API shows runs with the same short id as the CLI and takes it back."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import failed, ok, patterns, write_app
from tests.server.conftest import serve

__all__ = ["serve"]  # the real server fixture of tests/server


def test_download_an_app_that_is_not_here_yet(tmp_path: Path, serve) -> None:  # type: ignore[no-untyped-def]
    served = write_app(tmp_path / "served", bulk_rows=3)
    server = serve(served)
    target = tmp_path / "work" / "copy"  # neither folder exists yet
    out = ok(patterns("download", "--app", "cli-test-app", target, "--server", server.url,
                      cwd=tmp_path)).stdout
    assert "downloaded cli-test-app version" in out and str(target) in out
    for name in ("graph.yml", "gen.py", "consume.py", "broken.py"):
        assert (target / name).read_text() == (served / name).read_text()
    assert not (target / ".patterns" / "store.duckdb").exists()  # files only, not the data
    assert "3 node(s)" in ok(patterns("validate", cwd=target)).stdout

    # DIR left out: a folder named after the slug, in the current folder
    ok(patterns("download", "--app", "cli-test-app", "--server", server.url, cwd=tmp_path))
    assert (tmp_path / "cli-test-app" / "graph.yml").is_file()

    missing = failed(patterns("download", "--app", "no-such-app", tmp_path / "x", "--server",
                              server.url), "no-such-app")
    assert "Traceback" not in missing and not (tmp_path / "x").exists()

    # the server's runs carry the short id the CLI shows, and the API takes it
    ok(patterns("trigger", served, "gen.py", "--server", server.url))
    runs = server.http.get(f"{server.url}/api/v1/apps/cli-test-app/runs", timeout=30).json()
    assert runs and all(r["short_id"] == r["id"][-8:] for r in runs)
    one = server.http.get(f"{server.url}/api/v1/apps/cli-test-app/runs/{runs[0]['short_id']}",
                          timeout=30).json()
    assert one["id"] == runs[0]["id"]
    listed = json.loads(ok(patterns("runs", served, "--json", "--server", server.url)).stdout)
    # (the trigger's run may have woken others since: the run is listed, not necessarily first)
    assert runs[0]["short_id"] in [r["short_id"] for r in listed]
