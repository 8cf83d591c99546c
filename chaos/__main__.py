"""``python -m chaos [--trials N] [--seed S] [--scenario NAME ...]``: the chaos campaign.

Runs trials round-robin over the scenarios, prints one JSON line per trial with ``--json``,
and ends with a summary: trials, where they struck, records lost and doubled, mismatches.
Exits 1 when any trial lost, doubled or mismatched anything."""

from __future__ import annotations

import argparse
import importlib
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from chaos.trial import Trial

SCENARIOS = ["pipeline", "webhooks", "faults"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--trials", type=int, default=30, help="how many trials (default 30)")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: random)")
    parser.add_argument("--scenario", dest="scenarios", action="append", choices=SCENARIOS,
                        help="only this scenario (repeatable; default: all)")
    parser.add_argument("--json", action="store_true", help="one JSON line per trial")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    scenarios = args.scenarios or SCENARIOS
    modules = {name: importlib.import_module(f"chaos.{name}") for name in scenarios}
    trials: list[Trial] = []
    started = time.monotonic()
    for n in range(args.trials):
        name = scenarios[n % len(scenarios)]
        rng = random.Random(f"{seed}-{n}")
        with tempfile.TemporaryDirectory(prefix="patterns-chaos-") as workdir:
            try:
                result: Trial = modules[name].trial(rng, Path(workdir))
            except Exception as exc:  # the harness could not run the trial: a finding too
                from chaos.check import Verdict

                verdict = Verdict(mismatches=[f"trial error: {type(exc).__name__}: {exc}"])
                result = Trial(name, "error", verdict)
        trials.append(result)
        if args.json:
            print(json.dumps({"trial": n, **result.to_json()}), flush=True)
        elif not result.verdict.ok:
            print(f"trial {n} ({name}, {result.point}): {result.verdict.details} "
                  f"{result.verdict.mismatches}", flush=True)
    print(summary(trials, seed, time.monotonic() - started))
    return 0 if all(t.verdict.ok for t in trials) else 1


def summary(trials: list[Trial], seed: int, seconds: float) -> str:
    points = Counter(f"{t.scenario}/{t.point}" for t in trials)
    lost = sum(t.verdict.lost for t in trials)
    doubled = sum(t.verdict.doubled for t in trials)
    mismatched = sum(1 for t in trials if t.verdict.mismatches)
    lines = [f"chaos: {len(trials)} trials (seed {seed}) in {seconds:.0f} s",
             "points: " + ", ".join(f"{p} {n}" for p, n in sorted(points.items())),
             f"lost: {lost}", f"doubled: {doubled}", f"mismatches: {mismatched}",
             f"{sum(t.verdict.ok for t in trials)} passed, "
             f"{sum(not t.verdict.ok for t in trials)} failed"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
