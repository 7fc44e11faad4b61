"""Simulator cohort -> real Kafka -> worker replicas -> daily features and twins in MongoDB.

Checks the invariants end to end (see tests/integration/checks.py), also after a worker is
SIGKILLed mid-stream.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from confluent_kafka import Producer

from novamind.platform.kafka import producer_config
from novamind.platform.settings import Settings
from tests.integration.checks import assert_twins_equal_replay, check_outputs, publish_cohort
from tests.integration.harness import isolated, read_topic, reader_codec, wait_caught_up, workers
from tests.workers.features.factories import DAY_MS, MIN_MS, PATIENT, T0, biometric
from workers.features.journal import unpack
from workers.features.patient import day_date
from workers.runtime.deferred import FLOOR_KEY


def test_cohort_flows_to_features_and_twins(settings: Settings, run_id: str, tmp_path: Path) -> None:
    scenario = isolated(settings, f"pipe-{run_id}")
    cohort = publish_cohort(scenario, patients=4, days=21, seed=11)
    with workers(scenario, tmp_path, count=1) as running:
        wait_caught_up(scenario, running)
    check_outputs(scenario, cohort)
    assert assert_twins_equal_replay(scenario) == 4


@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_twins_survive_a_sigkilled_worker(
    settings: Settings, run_id: str, tmp_path: Path, static: bool
) -> None:
    """Static members (the replacement has the killed replica's id) take the partitions back
    without waiting for the session timeout; the outcome must be the same."""
    base = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"static_membership": static})}
    )
    scenario = isolated(base, f"kill{int(static)}-{run_id}")
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


@pytest.mark.parametrize("delay_s", [0.0, 600.0], ids=["written", "held"])
def test_a_worker_killed_with_a_journal_live_restores_it(
    settings: Settings, run_id: str, tmp_path: Path, delay_s: float
) -> None:
    """The killed replica folded samples since the last snapshot of the patient's parts. Written
    at once (no delay), its last write of the patient is the journal: the replacement restores
    it from the changelog and folds it again. Held back (a long delay), they are not in the
    changelog at all, its replay floor is: the replacement reads them again from the source.
    Either way the day they belong to closes with every sample."""
    base = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"state_write_delay_s": delay_s})}
    )
    scenario = isolated(base, f"jrn{int(delay_s)}-{run_id}")
    day = 24 * 60
    _publish_heart_rate(scenario, range(0, day + 601))  # history up to 10:00 of the second day
    with workers(scenario, tmp_path, count=1) as first:
        wait_caught_up(scenario, first)
        _publish_heart_rate(scenario, range(day + 601, day + 611))  # same hour: journaled
        wait_caught_up(scenario, first)
        first[0].kill()
    changelog = read_topic(scenario, "patient-windows")
    last = [m for m in changelog if m.key().startswith(PATIENT.encode())][-1]
    floors = [m.value() for m in changelog if m.key() == FLOOR_KEY]
    if delay_s:
        assert floors and floors[-1] is not None, floors  # the replay floor of the held samples
        assert not (last.key().endswith(b"|j") and _journaled_minutes(last.value()) & set(range(601, 611)))
    else:
        assert last.key().endswith(b"|j") and last.value() is not None, last.key()
        assert not floors
    _publish_heart_rate(scenario, range(day + 611, 2 * day + 120))  # past the next day's 01:00
    with workers(scenario, tmp_path / "after", count=1) as second:  # a full restore
        wait_caught_up(scenario, second)
    check_outputs(scenario, SimpleNamespace(deliveries=[]))
    codec = reader_codec(scenario)
    dates = {codec.decode_dict(m.value())[1]["date"] for m in read_topic(scenario, "patient-daily-features")}
    assert day_date(T0 // DAY_MS + 1) in dates  # the journal's day closed


def test_a_graceful_stop_writes_the_held_journals(settings: Settings, run_id: str, tmp_path: Path) -> None:
    """A replica stopped (not killed) writes the patients it held back in a last transaction:
    the changelog then holds every sample and no replay floor, so the next owner reads nothing
    again."""
    base = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"state_write_delay_s": 600.0})}
    )
    scenario = isolated(base, f"jrnstop-{run_id}")
    day = 24 * 60
    _publish_heart_rate(scenario, range(0, day + 601))
    with workers(scenario, tmp_path, count=1) as first:
        wait_caught_up(scenario, first)
        _publish_heart_rate(scenario, range(day + 601, day + 611))
        wait_caught_up(scenario, first)
        floors = [m.value() for m in read_topic(scenario, "patient-windows") if m.key() == FLOOR_KEY]
        assert floors and floors[-1] is not None, floors  # held while it runs
    changelog = read_topic(scenario, "patient-windows")
    floors = [m.value() for m in changelog if m.key() == FLOOR_KEY]
    assert floors[-1] is None  # nothing held after the stop
    last = [m for m in changelog if m.key().startswith(PATIENT.encode())][-1]
    assert last.key().endswith(b"|j") and _journaled_minutes(last.value()) >= set(range(601, 611))


def _journaled_minutes(raw: bytes | None) -> set[int]:
    """The minutes of the second day (from T0) of the samples a journal record carries."""
    if raw is None:
        return set()
    _fence, samples = unpack(raw)
    return {(s.t - T0) // MIN_MS - 24 * 60 for s, _fp in samples}
