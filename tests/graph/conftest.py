"""Fixtures for graph tests: real app folders written into tmp_path."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from patterns.errors import GraphError, Problem
from patterns.graph import App, load_app

ENRICH = """
from patterns import Table, Parameter, State

messages = Table("messages")
enriched = Table("messages_enriched", "w")
limit = Parameter("limit", type=int, default=100)
state = State()
"""

STORES = """
stores:
  - table: messages
  - table: messages_enriched
"""


class AppFolder:
    """An app folder under construction: write files, then load it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def graph(self, text: str) -> Path:
        return self.write("graph.yml", text)

    def load(self, overrides: Mapping[str, str] | None = None) -> App:
        return load_app(self.root, overrides)

    def problems(self, overrides: Mapping[str, str] | None = None) -> list[Problem]:
        with pytest.raises(GraphError) as caught:
            load_app(self.root, overrides)
        return caught.value.problems

    def problem(self, overrides: Mapping[str, str] | None = None) -> Problem:
        """The one problem of an app that has exactly one."""
        problems = self.problems(overrides)
        assert len(problems) == 1, "\n".join(str(p) for p in problems)
        return problems[0]

    def needs(self, overrides: Mapping[str, str] | None = None) -> Problem:
        """The one configuration problem of an app that loads with exactly one."""
        found = load_app(self.root, overrides).needs_configuration
        assert len(found) == 1, "\n".join(str(p) for p in found)
        return found[0]

    def warnings(self) -> list[Problem]:
        """The warnings of an app that loads."""
        return list(load_app(self.root).warnings)


@pytest.fixture
def app(tmp_path: Path) -> AppFolder:
    return AppFolder(tmp_path / "app")


def simple(app: AppFolder, function_lines: str = "", enrich: str = ENRICH) -> None:
    """An app with one enrich.py node; ``function_lines`` are extra keys of its entry."""
    app.write("enrich.py", enrich)
    app.graph("title: Chat\nfunctions:\n  - node_file: enrich.py\n" + function_lines + STORES)
