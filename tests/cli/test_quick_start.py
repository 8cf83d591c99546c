"""The README's quick start, run exactly as written (its commands are read from README.md, so
the two cannot drift), and `patterns` alone: a short overview of the commands, exit 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import ok, patterns
from tests.cli.terminal import Terminal

README = Path(__file__).resolve().parents[2] / "README.md"


def quick_start() -> str:
    """The first bash block under "## Quick start" in README.md."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quick start"):]
    found = re.search(r"```bash\n(.*?)```", section, re.S)
    assert found, "README.md has no bash block under ## Quick start"
    return found.group(1)


def test_the_readme_quick_start_works_as_written(tmp_path: Path) -> None:
    script = quick_start()
    assert script.startswith("source .venv/bin/activate")  # how `patterns` gets on PATH
    # The user's checkout: a .venv whose activate puts this Python's `patterns` on PATH.
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "patterns").is_file(), "install the project: pip install -e ."
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "activate").write_text(f'export PATH="{bin_dir}:$PATH"\n')
    env = {**os.environ, "PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "120",
           "PATTERNS_HOME": str(tmp_path / "home")}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    last = result.stdout.strip().splitlines()[-1]  # the table the last command names
    assert '"message": "hello from greet.py"' in last
    assert (tmp_path / "hello" / "graph.yml").is_file()


def test_the_readme_says_how_to_get_patterns_on_path_and_install_it() -> None:
    text = README.read_text(encoding="utf-8")
    assert "source .venv/bin/activate" in text
    assert re.search(r"pip install /path/to/this/repository", text)


@pytest.mark.parametrize("columns", [80, 200])
def test_patterns_alone_prints_an_overview_of_the_commands(tmp_path: Path, columns: int) -> None:
    term = Terminal(cwd=tmp_path, columns=columns)
    term.expect("(and docs/cli.md).")
    assert term.wait() == 0
    out = term.seen.replace("\r\n", "\n")
    assert out.startswith("Patterns: build and run data apps")
    assert "Usage:" in out and "Error" not in out
    for name in ("create", "remove", "run", "serve", "runs", "logs", "table", "validate",
                 "download"):
        assert re.search(rf"^  {name} +\S", out, re.M), name
    lines = out.splitlines()
    assert len(lines) < 45 and max(map(len, lines)) <= 80  # a short overview, 80 columns
    assert ok(patterns()).stdout == out.rstrip("\n") + "\n"  # the same when piped
    assert ok(patterns("--help")).stdout != ok(patterns()).stdout  # --help: click's help


def test_the_project_builds_without_build_tool_warnings() -> None:
    """setuptools reads pyproject.toml without a deprecation warning (the license is an SPDX
    string, not the old table form), so `scripts/example` shows none."""
    check = ("import warnings\n"
             "from setuptools.config.pyprojecttoml import apply_configuration\n"
             "from setuptools.dist import Distribution\n"
             "with warnings.catch_warnings(record=True) as caught:\n"
             "    warnings.simplefilter('always')\n"
             "    apply_configuration(Distribution(), 'pyproject.toml')\n"
             "print(len(caught)); [print(w.message) for w in caught]\n")
    result = subprocess.run([sys.executable, "-c", check], cwd=README.parent,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "0", result.stdout


def test_scripts_example_says_what_it_does_and_where_the_secrets_are(tmp_path: Path) -> None:
    """The example script's secret step, run as written (with this Python's `patterns` as
    the script's .venv/bin/patterns): it says where it stored the example's secrets."""
    script = (README.parent / "scripts" / "example").read_text()
    steps = [line[len("step "):].strip('"') for line in script.splitlines()
             if line.startswith("step ")]
    assert len(steps) >= 5 and any("virtualenv" in s for s in steps)
    start = script.index('step "saving the example')
    section = script[start:script.index("\nstep ", start + 1)]
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("patterns", "python"):
        (bin_dir / name).symlink_to(Path(sys.executable).parent / name)
    home = tmp_path / "home"
    prelude = "step() { printf '\\n==> %s\\n' \"$*\"; }\n"
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", prelude + section],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PATTERNS_HOME": str(home)}, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "==> saving the example's secrets" in result.stdout
    assert f"saved secrets demo_token and connection.demo_api, encrypted, in " \
           f"{home / 'secrets.enc'}" in result.stdout
    listed = ok(patterns("list", "secrets", env={"PATTERNS_HOME": str(home)})).stdout.split()
    assert listed == ["connection.demo_api", "demo_token"]
