"""Fixtures for the compatibility apps: small apps in the original format (under apps/),
copied to a temporary folder and run by a real engine or the real CLI."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from patterns.engine.engine import Engine
from patterns.engine.reactive import PassResult, ReactivePass
from patterns.graph.loader import load_app
from tests.server.conftest import serve  # noqa: F401  (a real `patterns serve` on loopback)

APPS = Path(__file__).parent / "apps"


class CompatApp:
    """A copy of one of the apps under apps/, with an engine over its own store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.engine = Engine(load_app(root))

    def run(self) -> PassResult:
        self.engine.app = load_app(self.root)
        return ReactivePass(self.engine).run()

    def rows(self, table: str, order: str = "patterns_id") -> list[dict[str, Any]]:
        if self.engine.store.table(table) is None:
            return []
        return self.engine.store.arrow(
            f'SELECT * EXCLUDE (patterns_id) FROM main."{table}" ORDER BY "{order}"').to_pylist()

    def close(self) -> None:
        self.engine.close()


def copy_app(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(APPS / name, tmp_path / name))


@pytest.fixture
def compat_app(tmp_path: Path) -> Iterator[Callable[[str], CompatApp]]:
    opened: list[CompatApp] = []

    def open_app(name: str) -> CompatApp:
        app = CompatApp(copy_app(name, tmp_path))
        opened.append(app)
        return app

    yield open_app
    for app in opened:
        app.close()
