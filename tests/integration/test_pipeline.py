"""Simulator cohort -> real Kafka -> worker replicas -> daily features and twins in MongoDB.

Checks the invariants end to end (see tests/integration/checks.py), also after a worker is
SIGKILLed mid-stream.
"""

from __future__ import annotations

import time
from pathlib import Path

from novamind.platform.settings import Settings
from tests.integration.checks import assert_twins_equal_replay, check_outputs, publish_cohort
from tests.integration.harness import isolated, wait_caught_up, workers


def test_cohort_flows_to_features_and_twins(settings: Settings, run_id: str, tmp_path: Path) -> None:
    scenario = isolated(settings, f"pipe-{run_id}")
    cohort = publish_cohort(scenario, patients=4, days=21, seed=11)
    with workers(scenario, tmp_path, count=1) as running:
        wait_caught_up(scenario, running)
    check_outputs(scenario, cohort)
    assert assert_twins_equal_replay(scenario) == 4


def test_twins_survive_a_sigkilled_worker(settings: Settings, run_id: str, tmp_path: Path) -> None:
    scenario = isolated(settings, f"kill-{run_id}")
    cohort = publish_cohort(scenario, patients=4, days=21, seed=12)
    with workers(scenario, tmp_path, count=1) as first:
        deadline = time.monotonic() + 120
        while "twin_batch" not in first[0].log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "twin_batch" in first[0].log(), first[0].log()[-2000:]
        first[0].kill()  # mid-stream: state and outputs partly written, offsets partly committed
    # The replacement joins while the broker still counts the dead member; it gets the
    # partitions when the session times out, restores the window state committed with the
    # offsets, and aborts nothing of its own: the dead replica's open transaction expires.
    with workers(scenario, tmp_path / "after", count=1) as second:
        wait_caught_up(scenario, second)
    check_outputs(scenario, cohort)
    assert assert_twins_equal_replay(scenario) == 4
