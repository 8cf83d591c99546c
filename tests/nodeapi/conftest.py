"""Apps in the original product's format, written to disk as given and run by a real engine."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import AppRunner


@pytest.fixture
def original_app(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], AppRunner]]:
    """An app folder from ``{path: text}`` (graph.yml included, as the original wrote it)."""
    runners: list[AppRunner] = []

    def make(files: dict[str, str]) -> AppRunner:
        root = tmp_path / f"app{len(runners)}"
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(textwrap.dedent(text).lstrip())
        runner = AppRunner(root)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.close()
