"""`patterns run --sandbox`: node code in the OS sandbox, as `patterns serve` runs it; without
the flag, as before (the author's own code on their own machine)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import failed, ok, patterns

GRAPH = "title: Probe\nfunctions:\n  - node_file: probe.py\n"
PROBE = ("import os\n"
         "print('store visible:', os.path.exists('.patterns/store.duckdb'))\n"
         "print('app read-only:', not os.access('graph.yml', os.W_OK) or "
         "os.statvfs('.').f_flag & os.ST_RDONLY == os.ST_RDONLY)\n")


def probe_app(root: Path) -> Path:
    root.mkdir()
    (root / "graph.yml").write_text(GRAPH)
    (root / "probe.py").write_text(PROBE)
    return root


def test_run_sandbox_hides_the_store_and_makes_the_app_read_only(tmp_path: Path) -> None:
    root = probe_app(tmp_path / "app")
    out = ok(patterns("run", root, "--sandbox")).stdout
    assert "store visible: False" in out and "app read-only: True" in out
    out = ok(patterns("run", root)).stdout
    assert "store visible: True" in out and "app read-only: False" in out


def test_run_sandbox_says_why_it_cannot_and_runs_nothing(tmp_path: Path) -> None:
    root = probe_app(tmp_path / "app")
    error = failed(patterns("run", root, "--sandbox", env={"PATH": str(tmp_path / "bin")}),
                   "cannot sandbox node code: bubblewrap (bwrap) is not installed",
                   "apt-get install bubblewrap")
    assert len(error.strip().splitlines()) == 1
    assert not (root / ".patterns" / "store.duckdb").exists()
