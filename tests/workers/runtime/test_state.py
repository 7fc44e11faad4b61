"""Window state of owned partitions: lazy restore, partition bookkeeping, exact round trip."""

from __future__ import annotations

from workers.features.patient import PatientState
from workers.pipeline.ingest import PatientEntry
from workers.runtime.state import PatientStates, decode_entry, encode_entry

A = "p_" + "a" * 32
B = "p_" + "b" * 32


def _entry(patient_id: str, offset: int) -> PatientEntry:
    state = PatientState(patient_id)
    state.ingest(
        "BiometricSample",
        {
            "event_id": f"{patient_id}-hr-1",
            "patient_id": patient_id,
            "event_time": 1_767_225_600_000,
            "received_time": 1_767_225_600_000,
            "source": "test",
            "schema_version": 1,
            "metric": "HEART_RATE",
            "value": 61.0,
            "unit": "beats/min",
            "duration_seconds": None,
            "sleep_stage": None,
            "device_id": "dev-1",
            "loinc": None,
        },
        1_767_225_600_000,
    )
    return PatientEntry(state, {"wearable-biometrics": offset})


def test_entry_round_trips_through_the_changelog_encoding() -> None:
    entry = _entry(A, 41)
    again = decode_entry(encode_entry(entry))
    assert again.fence == {"wearable-biometrics": 41}
    assert again.to_dict() == entry.to_dict()


def test_restored_entries_decode_on_first_use_only() -> None:
    decoded: list[bytes] = []

    def decode(raw: bytes) -> PatientEntry:
        decoded.append(raw)
        return decode_entry(raw)

    states = PatientStates(decode)
    states.restored(3, {A: encode_entry(_entry(A, 7)), B: encode_entry(_entry(B, 9))})
    assert A in states and len(states) == 2 and not decoded
    assert states[A].fence == {"wearable-biometrics": 7}
    assert len(decoded) == 1
    assert states[A] is states[A]  # decoded once, then live
    assert states.partition_of == {A: 3, B: 3}


def test_dropping_a_partition_forgets_its_patients_only() -> None:
    states = PatientStates()
    states.restored(1, {A: encode_entry(_entry(A, 1))})
    states[B] = _entry(B, 2)
    states.partition_of[B] = 2
    states.drop_partitions({1})
    assert A not in states and B in states
    assert states.partition_of == {B: 2}
    states.clear()
    assert len(states) == 0 and states.partition_of == {}
