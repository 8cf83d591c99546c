"""docs/cli.md is generated from the commands' --help and must stay so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import ok, patterns

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_up_to_date() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "cli_reference.py"),
                             "--check"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    text = (ROOT / "docs" / "cli.md").read_text()
    for command in ("patterns table show", "patterns stream reset", "patterns create node",
                    "patterns list secrets", "patterns logs"):
        assert f"## `{command}`" in text


def test_every_command_has_help() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    for line in text.splitlines():
        if line.startswith("## `patterns "):
            words = line.strip("#` ").split()[1:]
            result = ok(patterns(*words, "--help"))
            assert result.stdout.startswith("Usage: patterns " + " ".join(words))
