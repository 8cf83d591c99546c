"""The architecture's import rules (pyproject's ``[tool.importlinter]``) hold, and a
change that breaks one fails the suite: checked on the package as it is, and on a copy with a
violation put in."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache"], cwd=where, capture_output=True,
                          text=True, timeout=300)


def test_the_package_keeps_every_import_rule() -> None:
    found = lint(ROOT)
    assert found.returncode == 0, found.stdout[-3000:] + found.stderr[-2000:]
    assert "0 broken" in found.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("engine/events.py", "import duckdb", "patterns.engine is not allowed to import duckdb"),
    ("server/lookup.py", "from patterns.store import migrations",
     None),  # (the server may use the store: this one is allowed)
    ("sdk/respond.py", "from patterns.store import ids",
     "patterns.sdk is not allowed to import patterns.store"),
    ("store/ids.py", "from patterns.engine import events",
     "patterns.engine"),
    ("cli/console.py", "import psycopg", "patterns.cli is not allowed to import psycopg"),
])
def test_a_broken_rule_fails_the_check(tmp_path: Path, module: str, line: str,
                                       broken: str | None) -> None:
    shutil.copytree(ROOT / "patterns", tmp_path / "patterns",
                    ignore=shutil.ignore_patterns("__pycache__", "node_modules", "studio"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "patterns" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    found = lint(tmp_path)
    if broken is None:
        assert found.returncode == 0, found.stdout[-3000:]
    else:
        assert found.returncode != 0 and broken in found.stdout, found.stdout[-3000:]
