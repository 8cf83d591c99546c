"""What the benchmarks share: the figure they print, timing, and throwaway apps."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    """One measured figure against its baseline: ``ratio`` is value / baseline, and
    ``target`` says which way is good (``"<= 0.5"``: at most half the baseline; ``""``: a
    figure for reference, with no target)."""

    bench: str
    figure: str
    value: float
    baseline: float
    unit: str
    target: str
    size: int
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    @property
    def met(self) -> bool | None:
        if not self.target:
            return None
        op, _, bound = self.target.partition(" ")
        limit = float(bound)
        return self.ratio <= limit if op == "<=" else self.ratio >= limit

    def line(self) -> str:
        doc = asdict(self)
        doc["ratio"] = round(self.ratio, 3)
        doc["met"] = self.met
        doc["value"] = round(self.value, 3)
        doc["baseline"] = round(self.baseline, 3)
        return json.dumps(doc)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@contextmanager
def temp_app(files: dict[str, str], graph: str) -> Iterator[Path]:
    """An app folder with ``graph`` as graph.yml and ``files`` as node files, and a private
    Patterns home, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="patterns-bench-") as tmp:
        root = Path(tmp) / "app"
        root.mkdir()
        (root / "graph.yml").write_text(textwrap.dedent(graph))
        for name, source in files.items():
            (root / name).write_text(textwrap.dedent(source))
        saved = os.environ.get("PATTERNS_HOME")
        os.environ["PATTERNS_HOME"] = str(Path(tmp) / "home")
        try:
            yield root
        finally:
            if saved is None:
                os.environ.pop("PATTERNS_HOME", None)
            else:
                os.environ["PATTERNS_HOME"] = saved


PYTHON = sys.executable
