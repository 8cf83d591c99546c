"""The chaos campaign stays runnable and finds nothing: a few trials of each scenario (kill
-9 of the engine, a worker, a node or the server; injected store faults and a full disk),
each recovered and checked for records lost or doubled and state that disagrees."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from chaos import pipeline, webhooks
from chaos.trial import Trial

ROOT = Path(__file__).resolve().parents[1]


def explain(trial: Trial) -> str:
    return f"{trial.scenario} at {trial.point}: {trial.to_json()}"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_a_pipeline_killed_anywhere_recovers_exactly_once(tmp_path: Path, seed: int) -> None:
    trial = pipeline.trial(random.Random(seed), tmp_path)
    assert trial.verdict.ok, explain(trial)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 4])
def test_a_served_webhook_app_killed_anywhere_keeps_every_acked_record_once(
        tmp_path: Path, seed: int) -> None:
    trial = webhooks.trial(random.Random(seed), tmp_path)
    assert trial.verdict.ok, explain(trial)
    assert not any(n.startswith("0 acked") for n in trial.notes), "nothing acked: proves nothing"


@pytest.mark.slow
def test_injected_store_faults_lose_and_double_nothing(tmp_path: Path) -> None:
    trial = pipeline.trial(random.Random(5), tmp_path,
                           faults="rate=0.2,seed=5,kinds=io+full")
    assert "none hit" not in trial.point, "no fault was injected: the test proves nothing"
    assert trial.verdict.ok, explain(trial)


@pytest.mark.slow
def test_a_full_disk_under_the_engine_loses_and_doubles_nothing(tmp_path: Path) -> None:
    trial = pipeline.trial(random.Random(6), tmp_path, fsize=100_000)
    assert "none hit" not in trial.point, "the disk never filled: the test proves nothing"
    assert trial.verdict.ok, explain(trial)


def test_the_campaign_command_prints_its_summary(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "chaos", "--trials", "2", "--seed", "3",
                           "--scenario", "faults"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("chaos: 2 trials (seed 3)"), done.stdout + done.stderr
    for line in ("lost: 0", "doubled: 0", "mismatches: 0", "2 passed, 0 failed"):
        assert line in lines, done.stdout + done.stderr
    assert done.returncode == 0
