"""Store faults injected on purpose, for the chaos campaign (``python -m chaos``).

With ``PATTERNS_FAULTS`` unset (always, outside the campaign) :func:`point` is one check of a
module constant. Set, e.g. ``PATTERNS_FAULTS="rate=0.05,seed=7,kinds=io+full"``, each point
a commit passes fails with probability ``rate``, raising the error DuckDB raises for a failing
disk (``kinds``: ``io`` an I/O error, ``full`` no space left), so the engine's handling of a
store that fails mid-commit is exercised on every path that commits.
"""

from __future__ import annotations

import os
import random

_SPEC = os.environ.get("PATTERNS_FAULTS", "")
ACTIVE = bool(_SPEC)


class _Faults:
    def __init__(self, spec: str) -> None:
        fields = dict(part.split("=", 1) for part in spec.split(",") if "=" in part)
        self.rate = float(fields.get("rate", "0.05"))
        self.rng = random.Random(int(fields.get("seed", "0")) ^ os.getpid())
        self.kinds = fields.get("kinds", "io+full").split("+")
        self.injected = 0

    def point(self, where: str) -> None:
        if self.rng.random() >= self.rate:
            return
        import duckdb

        self.injected += 1
        kind = self.rng.choice(self.kinds)
        if kind == "full":
            raise duckdb.IOException(f"injected fault at {where}: could not write file: "
                                     f"No space left on device")
        raise duckdb.IOException(f"injected fault at {where}: Input/output error")


_faults = _Faults(_SPEC) if ACTIVE else None


def point(where: str) -> None:
    """A place where the store may fail (only when faults are injected)."""
    if _faults is not None:
        _faults.point(where)
