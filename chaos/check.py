"""Reading a trial's store once every process is gone, and checking exactly-once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Verdict:
    """What a trial found: records lost or doubled per table, and state that disagrees."""

    lost: int = 0
    doubled: int = 0
    mismatches: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.doubled or self.mismatches)

    def once(self, table: str, got: Iterable[Any], expected: Iterable[Any]) -> None:
        """Every expected key in ``got`` exactly once, and nothing else."""
        seen, want = Counter(got), Counter(expected)
        lost = want - seen
        doubled = {k: n - 1 for k, n in seen.items() if n > 1}
        extra = set(seen) - set(want)
        self.lost += sum(lost.values())
        self.doubled += sum(doubled.values())
        if lost:
            self.details.append(f"{table}: lost {sorted(lost)[:5]}")
        if doubled:
            self.details.append(f"{table}: doubled {sorted(doubled)[:5]}")
        if extra:
            self.mismatches.append(f"{table}: unexpected {sorted(extra)[:5]}")

    def agree(self, what: str, got: Any, expected: Any) -> None:
        if got != expected:
            self.mismatches.append(f"{what}: {got!r}, expected {expected!r}")


class StoreReader:
    """The app's store, opened read-only by the campaign after the trial's processes end."""

    def __init__(self, app: Path) -> None:
        from patterns.store.duckdb import DuckDBStore

        self.store = DuckDBStore(app / ".patterns" / "store.duckdb", read_only=True)

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()

    def column(self, table: str, name: str) -> list[Any]:
        if self.store.table(table) is None:
            return []
        data = self.store.arrow(f'SELECT "{name}" FROM main."{table}"')
        return list(data.column(0).to_pylist())

    def rows(self, table: str, *names: str) -> list[tuple[Any, ...]]:
        if self.store.table(table) is None:
            return []
        cols = ", ".join(f'"{n}"' for n in names)
        data = self.store.arrow(f'SELECT {cols} FROM main."{table}"')
        return list(zip(*(data.column(i).to_pylist() for i in range(len(names))), strict=True))

    def state(self, node_id: str) -> dict[str, Any]:
        with self.store.read() as view:
            return view.memory.state(node_id)

    def runs_left_running(self) -> int:
        with self.store.read() as view:
            return sum(1 for r in view.runs.recent(limit=100_000) if r.status == "running")
