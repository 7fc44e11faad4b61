"""The twin batch step: offset fencing, and live batches equal the one-pass replay."""

from __future__ import annotations

import datetime as dt

from schemas.codec import AvroCodec
from workers.pipeline.ingest import Inbound
from workers.pipeline.twin import TwinEntry, TwinProcessor, replay
from workers.twin.serialize import deserialize, serialize, state_digest
from workers.twin.twin import new_twin

codec = AvroCodec()
PATIENT = "p_" + "3" * 32
DAY0 = dt.date(2026, 3, 2)


def _features(day: int, severity: float) -> dict:
    date = DAY0 + dt.timedelta(days=day)
    end = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return {
        "event_id": f"f-{day}",
        "patient_id": PATIENT,
        "event_time": end,
        "received_time": end,
        "source": "test",
        "schema_version": 1,
        "date": date,
        "revision": 0,
        "missing": False,
        "heart_rate_mean": 70.0 + day % 3,
        "heart_rate_min": 50.0,
        "heart_rate_max": 120.0,
        "heart_rate_std": 9.0,
        "resting_heart_rate": 60.0 + day % 2,
        "hrv_rmssd": 40.0,
        "hrv_sdnn": None,
        "steps_total": 8000.0 - 100 * day,
        "spo2_mean": None,
        "respiratory_rate_mean": None,
        "sleep_total_minutes": 420.0 - day,
        "sleep_deep_minutes": 60.0,
        "sleep_rem_minutes": 90.0,
        "sleep_light_minutes": 250.0,
        "sleep_awake_minutes": 20.0,
        "sleep_efficiency": 0.95,
        "symptom_severity_mean": severity,
        "symptom_severity_by_type": {"ANXIETY": severity},
        "phq9_total": None,
        "phq9_change": None,
        "gad7_total": None,
        "gad7_change": None,
        "rolling_7d": {},
        "normalized": {},
        "completeness": 1.0,
        "outlier_share": 0.0,
        "consistency": 1.0,
        "meets_quality_standards": True,
        "late_events": 0,
    }


def _log(days: int) -> list[Inbound]:
    return [
        Inbound(
            PATIENT.encode(),
            codec.encode_dict("PatientDailyFeatures", _features(d, 3.0 + (d % 5) * 0.5)),
            "twin-inputs",
            0,
            d,
            0,
        )
        for d in range(days)
    ]


def test_batches_with_restarts_equal_the_one_pass_replay() -> None:
    log = _log(30)
    processor = TwinProcessor(codec=codec)
    stored: dict[str, TwinEntry] = {PATIENT: TwinEntry(new_twin(PATIENT))}
    for start in range(0, len(log), 7):
        # every batch starts from the stored bytes, as after a rebalance or restart
        entry = stored[PATIENT]
        batch = {PATIENT: TwinEntry(deserialize(serialize(entry.state)), entry.offset)}
        processor.process(log[start : start + 7], batch)
        stored = batch
    reference = replay(codec.decode_dict(m.value) for m in log)[PATIENT]
    assert state_digest(stored[PATIENT].state) == state_digest(reference)
    assert stored[PATIENT].offset == 29


def test_inputs_already_applied_are_skipped() -> None:
    log = _log(10)
    processor = TwinProcessor(codec=codec)
    entries = {PATIENT: TwinEntry(new_twin(PATIENT))}
    first = processor.process(log[:6], entries)
    version = entries[PATIENT].state.twin_version
    again = processor.process(log[:6], entries)
    assert again.skipped == 6 and not again.updates
    assert entries[PATIENT].state.twin_version == version
    assert len(first.updates) == 6


def test_undecodable_inputs_are_dead_lettered() -> None:
    processor = TwinProcessor(codec=codec)
    bad = Inbound(PATIENT.encode(), b"\xc3\x01truncated", "twin-inputs", 2, 5, 0)
    result = processor.process([bad], {})
    assert [(d["error_class"], d["source_offset"]) for d in result.dead_letters] == [
        ("UnknownFingerprint", 5)
    ]
