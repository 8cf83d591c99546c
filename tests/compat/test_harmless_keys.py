"""Keys of the original format that mean nothing here load; other unknown keys are warnings."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import patterns

from .conftest import CompatApp, copy_app


def test_tags_version_and_icons_load_and_the_app_runs(
        compat_app: Callable[[str], CompatApp]) -> None:
    app = compat_app("harmless_keys")
    assert app.engine.app.slug == "tagged-app"
    result = app.run()
    assert result.ok, [r.error for r in result.runs]
    assert app.rows("greetings") == [{"text": "hello"}]


def test_validate_warns_about_keys_the_original_ignored(tmp_path: Path) -> None:
    root = copy_app("harmless_keys", tmp_path)
    result = patterns("validate", root, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["valid"] is True and report["problems"] == []
    warned = {(w["line"], w["message"]) for w in report["warnings"]}
    assert warned == {
        (7, "unknown key 'author' in graph.yml is ignored"),
        (16, "unknown key 'color' in function 'hello.py' is ignored"),
    }
    text = patterns("validate", root)
    assert text.returncode == 0
    assert "graph.yml:16 (node hello.py): unknown key 'color'" in text.stdout
    assert patterns("validate", root, "--strict").returncode == 1


def test_patterns_run_shows_the_warnings_and_runs(tmp_path: Path) -> None:
    root = copy_app("harmless_keys", tmp_path)
    result = patterns("run", root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning: graph.yml:7: unknown key 'author' in graph.yml is ignored" in result.stdout
