"""The pipeline app on a store that fails: I/O and no-space errors injected at random points
of its commits, or a real full disk (a file-size limit on the engine), then recovery."""

from __future__ import annotations

import random
from pathlib import Path

from chaos import pipeline
from chaos.trial import Trial


def trial(rng: random.Random, workdir: Path) -> Trial:
    if rng.random() < 0.5:
        rate = rng.choice((0.02, 0.05, 0.1, 0.2))
        kinds = rng.choice(("io", "full", "io+full"))
        spec = f"rate={rate},seed={rng.randrange(1 << 30)},kinds={kinds}"
        return pipeline.trial(rng, workdir, faults=spec)
    return pipeline.trial(rng, workdir, fsize=rng.randrange(40_000, 160_000))
