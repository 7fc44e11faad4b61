"""Simulator cohort -> real Kafka -> worker replicas -> daily features and twins in MongoDB.

Checks the invariants end to end (see tests/integration/checks.py), also after a worker is
SIGKILLed mid-stream.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

from confluent_kafka import Producer

from novamind.platform.kafka import producer_config
from novamind.platform.settings import Settings
from tests.integration.checks import assert_twins_equal_replay, check_outputs, publish_cohort
from tests.integration.harness import isolated, read_topic, reader_codec, wait_caught_up, workers
from tests.workers.features.factories import DAY_MS, MIN_MS, PATIENT, T0, biometric
from workers.features.patient import day_date


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


def _publish_heart_rate(settings: Settings, minutes: range) -> None:
    """One heart-rate sample of PATIENT per minute of ``minutes`` (from T0), in order."""
    codec = reader_codec(settings)
    producer = Producer(producer_config(settings.kafka, client_id="journal-test"))
    topic = settings.kafka.topic("wearable-biometrics")
    for minute in minutes:
        event = biometric("HEART_RATE", T0 + minute * MIN_MS, 60.0 + minute % 17, event_id=f"hr-{minute}")
        producer.produce(topic, key=PATIENT.encode(), value=codec.encode_dict("BiometricSample", event))
    assert producer.flush(30) == 0


def test_a_worker_killed_with_a_journal_live_restores_it(
    settings: Settings, run_id: str, tmp_path: Path
) -> None:
    """The killed replica's last write of the patient is a journal (samples since the last
    snapshot of its parts): the replacement restores it from the changelog, folds it again, and
    the day it belongs to closes with every sample."""
    scenario = isolated(settings, f"jrn-{run_id}")
    day = 24 * 60
    _publish_heart_rate(scenario, range(0, day + 601))  # history up to 10:00 of the second day
    with workers(scenario, tmp_path, count=1) as first:
        wait_caught_up(scenario, first)
        _publish_heart_rate(scenario, range(day + 601, day + 611))  # same hour: journaled
        wait_caught_up(scenario, first)
        first[0].kill()
    last = [m for m in read_topic(scenario, "patient-windows") if m.key().startswith(PATIENT.encode())][-1]
    assert last.key().endswith(b"|j") and last.value() is not None, last.key()
    _publish_heart_rate(scenario, range(day + 611, 2 * day + 120))  # past the next day's 01:00
    with workers(scenario, tmp_path / "after", count=1) as second:  # a full restore
        wait_caught_up(scenario, second)
    check_outputs(scenario, SimpleNamespace(deliveries=[]))
    codec = reader_codec(scenario)
    dates = {codec.decode_dict(m.value())[1]["date"] for m in read_topic(scenario, "patient-daily-features")}
    assert day_date(T0 // DAY_MS + 1) in dates  # the journal's day closed
