"""The ingest batch step, without a broker: dead letters, fencing, safety alerts, outputs."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from novamind.platform.settings import WorkerSettings
from schemas.codec import AvroCodec
from workers.pipeline.ingest import Inbound, IngestProcessor, safety_alerts_of
from workers.runtime.state import window_config

codec = AvroCodec()
PATIENT = "p_" + "1" * 32
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
DAY = 86_400_000


def _sample(minute: int, value: float = 70.0, unit: str = "beats/min") -> dict:
    when = T0 + dt.timedelta(minutes=minute)
    return {
        "event_id": f"hr-{minute}",
        "patient_id": PATIENT,
        "event_time": when,
        "received_time": when,
        "source": "test",
        "schema_version": 1,
        "metric": "HEART_RATE",
        "value": value,
        "unit": unit,
        "duration_seconds": None,
        "sleep_stage": None,
        "device_id": "d_" + "2" * 32,
        "loinc": "8867-4",
    }


def _phq9(items: list[int]) -> dict:
    return {
        "event_id": "phq9-1",
        "patient_id": PATIENT,
        "event_time": T0,
        "received_time": T0,
        "source": "test",
        "schema_version": 1,
        "submission_id": "s1",
        "instrument": "PHQ9",
        "item_responses": items,
        "total": sum(items),
        "band": "MILD",
        "item9_positive": items[8] >= 1,
        "loinc_total": "44261-6",
    }


def _message(
    offset: int, name: str, record: dict, topic: str = "wearable-biometrics", key: bytes | None = None
):
    value = codec.encode_dict(name, record)
    return Inbound(
        key if key is not None else PATIENT.encode(),
        value,
        topic,
        0,
        offset,
        int(T0.timestamp() * 1000) + 10**7,
    )


def test_undecodable_and_invalid_messages_become_dead_letters_with_their_bytes() -> None:
    processor = IngestProcessor(codec=codec, entries={})
    garbage = Inbound(PATIENT.encode(), b"\x00\xff\xfegarbage", "wearable-biometrics", 3, 17, 0)
    wrong_unit = _message(18, "BiometricSample", _sample(1, unit="ms"))
    result = processor.process([garbage, wrong_unit])
    letters = {d["source_offset"]: d for d in result.dead_letters}
    assert letters[17]["original_value"] == garbage.value
    assert letters[17]["source_topic"] == "wearable-biometrics" and letters[17]["source_partition"] == 3
    assert letters[17]["error_class"] == "UnknownSchemaId"
    assert letters[18]["error_class"] == "UnitMismatch"
    assert letters[18]["original_value"] == wrong_unit.value


def test_a_message_keyed_by_another_patient_is_dead_lettered() -> None:
    processor = IngestProcessor(codec=codec, entries={})
    result = processor.process([_message(0, "BiometricSample", _sample(1), key=b"p_" + b"9" * 32)])
    assert [d["error_class"] for d in result.dead_letters] == ["KeyMismatch"]


def test_redelivered_offsets_are_fenced_off_and_fold_in_once() -> None:
    entries: dict = {}
    processor = IngestProcessor(codec=codec, entries=entries)
    batch = [_message(i, "BiometricSample", _sample(i, value=60.0 + i)) for i in range(5)]
    processor.process(batch[:3])
    again = processor.process(batch)  # a crash before the commit redelivers 0..4
    assert again.skipped == 3
    day = entries[PATIENT].state.days[int(T0.timestamp() * 1000) // 86_400_000]
    assert day.moments("HEART_RATE").n == 5


def test_item9_alert_is_read_from_the_report_alone() -> None:
    positive = _message(0, "AssessmentResult", _phq9([1, 1, 1, 0, 0, 0, 0, 0, 1]), topic="patient-reports")
    negative = _message(
        1,
        "AssessmentResult",
        {**_phq9([1] * 8 + [0]), "event_id": "phq9-2", "submission_id": "s2"},
        topic="patient-reports",
    )
    alerts = safety_alerts_of(codec, [positive, negative])
    assert [(a["alert_type"], a["severity"], a["trigger_event_id"]) for a in alerts] == [
        ("ITEM9_SAFETY", "CRITICAL", "phq9-1")
    ]
    assert alerts[0]["evidence"]["item9_score"] == "1"


def test_item9_screen_from_the_ehr_topic_alerts_and_is_no_phq9_total() -> None:
    screen = {
        **_phq9([0] * 9),
        "event_id": "screen-1",
        "submission_id": "fhir:ehr:Observation/item9",
        "source": "fhir:ehr",
        "schema_version": 2,
        "instrument": "PHQ9_ITEM9",
        "item_responses": [2],
        "total": 2,
        "band": "UNKNOWN",
        "item9_positive": True,
        "loinc_total": "44260-8",
    }
    message = _message(0, "AssessmentResult", screen, topic="ehr-clinical-events")
    [alert] = safety_alerts_of(codec, [message])
    assert (alert["alert_type"], alert["trigger_event_id"]) == ("ITEM9_SAFETY", "screen-1")
    assert alert["evidence"] == {"instrument": "PHQ9_ITEM9", "item9_score": "2"}
    entries: dict = {}
    result = IngestProcessor(codec=codec, entries=entries).process([message])
    assert result.dead_letters == [] and [name for name, _ in result.twin_inputs] == ["AssessmentResult"]
    assert entries[PATIENT].state.assessments == {}  # validated and counted, not a PHQ-9 total


def test_twin_relevant_events_are_forwarded_in_order() -> None:
    processor = IngestProcessor(codec=codec, entries={})
    result = processor.process(
        [_message(0, "AssessmentResult", {**_phq9([0] * 9), "band": "MINIMAL"}, topic="patient-reports")]
    )
    assert [name for name, _ in result.twin_inputs] == ["AssessmentResult"]


def test_the_configured_lateness_decides_what_folds_and_what_is_late() -> None:
    received = int(T0.timestamp() * 1000) + 6 * DAY  # all read six days after T0

    def message(offset: int, minute: int) -> Inbound:
        value = codec.encode_dict("BiometricSample", _sample(minute, value=60.0 + offset))
        return Inbound(PATIENT.encode(), value, "wearable-biometrics", 0, offset, received)

    # the stream moves five days on, then a sample from the first day arrives
    batch = [message(0, 0), message(1, 5 * 24 * 60), message(2, 1)]
    day0 = int(T0.timestamp() * 1000) // DAY

    default_entries: dict = {}
    folded = IngestProcessor(codec=codec, entries=default_entries).process(batch)
    assert folded.dead_letters == []
    assert default_entries[PATIENT].state.days[day0].moments("HEART_RATE").n == 2

    short = window_config(WorkerSettings(lateness_days=2, dedup_horizon_days=2, window_retention_days=3))
    assert (short.lateness_ms, short.dedup_horizon_ms, short.retention_ms) == (2 * DAY, 2 * DAY, 3 * DAY)
    short_entries: dict = {}
    rejected = IngestProcessor(codec=codec, entries=short_entries, config=short).process(batch)
    assert [(d["source_offset"], d["error_class"]) for d in rejected.dead_letters] == [(2, "LateEvent")]
    assert short_entries[PATIENT].state.days[day0].moments("HEART_RATE").n == 1


def test_windows_must_cover_the_lateness() -> None:
    with pytest.raises(ValidationError, match=r"dedup_horizon_days \(20\) must cover lateness_days \(30\)"):
        WorkerSettings(dedup_horizon_days=20)
    with pytest.raises(ValidationError, match=r"window_retention_days \(10\) must cover lateness_days"):
        WorkerSettings(window_retention_days=10)


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("MedicationEvent", {"action": "STARTED", "rxnorm": None, "drug": "sertraline", "dose_mg": 50.0}),
        (
            "GeneticProfile",
            {"phenotypes": [{"gene": "CYP2D6", "phenotype": "POOR_METABOLIZER", "diplotype": None}]},
        ),
        ("Demographics", {"age_band": "AGE_25_34", "sex": "FEMALE"}),
    ],
)
def test_future_dated_ehr_records_become_dead_letters_and_old_ones_fold(name: str, fields: dict) -> None:
    """EHR context gets the future-time rule of every record, and no lateness horizon."""
    processor = IngestProcessor(codec=codec, entries={})
    base = {"patient_id": PATIENT, "received_time": T0, "source": "test", "schema_version": 1, **fields}
    future = {**base, "event_id": "f", "event_time": T0 + dt.timedelta(days=3)}
    old = {**base, "event_id": "o", "event_time": dt.datetime(1994, 5, 1, tzinfo=dt.UTC)}
    topic = "ehr-clinical-events"
    result = processor.process([_message(1, name, future, topic=topic), _message(2, name, old, topic=topic)])
    assert [(d["source_offset"], d["error_class"]) for d in result.dead_letters] == [(1, "FutureTimestamp")]
    assert [(n, r["event_id"]) for n, r in result.twin_inputs] == [(name, "o")]


def test_a_future_dated_record_of_every_kind_becomes_a_dead_letter() -> None:
    ahead = dt.timedelta(days=3)
    symptom = {
        "event_id": "sym-1",
        "patient_id": PATIENT,
        "event_time": T0,
        "received_time": T0,
        "source": "test",
        "schema_version": 1,
        "symptom_type": "ANXIETY",
        "severity": 4,
        "context": None,
        "triggers": [],
        "notes": None,
    }
    envelope = {"patient_id": PATIENT, "received_time": T0, "source": "test", "schema_version": 1}
    records = [
        ("BiometricSample", {**_sample(0), "event_time": T0 + ahead}, "wearable-biometrics"),
        ("SymptomReport", {**symptom, "event_time": T0 + ahead}, "patient-reports"),
        ("AssessmentResult", {**_phq9([1] * 9), "event_time": T0 + ahead}, "patient-reports"),
        (
            "MedicationEvent",
            {
                **envelope,
                "event_id": "m",
                "event_time": T0 + ahead,
                "action": "STARTED",
                "rxnorm": None,
                "drug": "sertraline",
                "dose_mg": 50.0,
            },
            "ehr-clinical-events",
        ),
        (
            "GeneticProfile",
            {**envelope, "event_id": "g", "event_time": T0 + ahead, "phenotypes": []},
            "ehr-clinical-events",
        ),
        (
            "Demographics",
            {**envelope, "event_id": "d", "event_time": T0 + ahead, "age_band": "AGE_25_34", "sex": "MALE"},
            "ehr-clinical-events",
        ),
    ]
    processor = IngestProcessor(codec=codec, entries={})
    messages = [_message(i, name, record, topic=topic) for i, (name, record, topic) in enumerate(records)]
    result = processor.process(messages)
    assert sorted((d["source_offset"], d["error_class"]) for d in result.dead_letters) == [
        (i, "FutureTimestamp") for i in range(len(records))
    ]
    assert result.twin_inputs == [] and result.features == []
