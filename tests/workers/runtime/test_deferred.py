"""Journal-only window-state writes held back: which patients wait, when they are written, and
the replay floor each partition's changelog records so a restore reads their samples again."""

from __future__ import annotations

from pathlib import Path

from tests.workers.features.factories import NOW
from tests.workers.features.test_streams import hr
from workers.features.patient import PatientState
from workers.pipeline.ingest import PatientEntry
from workers.runtime.deferred import FLOOR_KEY, DeferredWrites, decode_floor, encode_floor
from workers.runtime.state import PatientStates

A = "p_" + "a" * 32
B = "p_" + "b" * 32
WEARABLE = "wearable-biometrics"


def _sample(entry: PatientEntry, minute: int, offset: int) -> None:
    sample = {**hr(0, minute, 61.0 + minute % 7), "patient_id": entry.state.patient_id}
    assert entry.state.ingest("BiometricSample", sample, NOW) is None
    entry.fence[WEARABLE] = offset


def _states(tmp_path: Path, delay: float = 60.0, **kw) -> PatientStates:
    states = PatientStates(tmp_path / "state", write_delay_s=delay, **kw)
    states.open(0)
    states.open(1)
    return states


def _written_once(states: PatientStates, partition: int) -> PatientEntry:
    """Patient A with one sample, its first write (a new patient's) persisted."""
    entry = PatientEntry(PatientState(A))
    states[A] = entry
    _sample(entry, 600, 0)
    states.persist(states.changes({A: partition}, {partition: {WEARABLE: 0}}, now=0.0), {partition: 1}, [A])
    return entry


def _patient_keys(changes: dict[int, dict[bytes, bytes | None]], patient: str) -> set[bytes]:
    return {k for records in changes.values() for k in records if k.startswith(patient.encode())}


def test_a_held_patient_waits_until_its_delay_has_passed() -> None:
    held = DeferredWrites(delay_s=60.0)
    floor = {WEARABLE: 10}
    assert held.hold(A, 1, floor, now=0.0)
    assert held.hold(A, 1, {WEARABLE: 30}, now=59.0)  # still within the delay: its first floor stays
    assert held.waiting[A].floor == floor
    assert held.due(59.0) == [] and held.due(60.0) == [A]
    assert not held.hold(A, 1, floor, now=60.0)  # waited long enough: write it


def test_no_delay_holds_nothing() -> None:
    held = DeferredWrites(delay_s=0.0)
    assert not held.hold(A, 1, {WEARABLE: 10}, now=0.0)
    assert held.waiting == {}


def test_the_floor_is_the_lowest_offset_held_per_partition_and_is_recorded_once() -> None:
    held = DeferredWrites(delay_s=60.0)
    first, later = {WEARABLE: 10, "patient-reports": 4}, {WEARABLE: 25}
    held.hold(A, 1, first, now=0.0)
    held.hold(B, 1, later, now=5.0)
    assert held.floors({0, 1}) == {1: {WEARABLE: 10, "patient-reports": 4}}
    assert held.floors({0, 1}) == {}  # unchanged: not sent again
    held.written(A)
    assert held.floors({0, 1}) == {1: {WEARABLE: 25}}
    held.written(B)
    assert held.floors({0, 1}) == {1: None}  # nothing held: the floor record is deleted


def test_a_restored_floor_is_cleared_once_nothing_is_held_there() -> None:
    held = DeferredWrites(delay_s=60.0)
    held.restored(1, {WEARABLE: 7})
    assert held.floors({1}) == {1: None}


def test_floors_round_trip() -> None:
    floor = {WEARABLE: 12, "patient-reports": 3}
    assert decode_floor(encode_floor(floor)) == floor
    assert decode_floor(None) is None


def test_a_journal_only_patient_is_held_and_the_floor_goes_with_the_batch(tmp_path: Path) -> None:
    states = _states(tmp_path)
    entry = _written_once(states, 1)
    _sample(entry, 601, 5)
    changes = states.changes({A: 1}, {1: {WEARABLE: 5}}, now=1.0)
    assert _patient_keys(changes, A) == set()  # held: journal-only
    assert decode_floor(changes[1][FLOOR_KEY]) == {WEARABLE: 5}
    states.persist(changes, {1: 2}, [A])
    assert states.replay_floor(1) == {WEARABLE: 5}
    _sample(entry, 602, 9)
    assert states.changes({A: 1}, {1: {WEARABLE: 9}}, now=30.0) == {}  # still held, floor unchanged
    written = states.changes({}, {}, now=61.0)  # due though not touched
    assert _patient_keys(written, A) == {f"{A}|j".encode()}
    assert written[1][FLOOR_KEY] is None
    states.persist(written, {1: 4}, [])
    assert states.replay_floor(1) is None
    states.clear()
    assert states[A].state.to_dict() == entry.state.to_dict()  # the journal holds both samples


def test_a_held_patient_that_changes_more_than_its_journal_is_written_at_once(tmp_path: Path) -> None:
    states = _states(tmp_path)
    entry = _written_once(states, 0)
    _sample(entry, 601, 1)
    assert _patient_keys(states.changes({A: 0}, {0: {WEARABLE: 1}}, now=1.0), A) == set()
    entry.state.journal.stop()  # e.g. a rejected sample
    changes = states.changes({A: 0}, {0: {WEARABLE: 2}}, now=2.0)
    assert f"{A}|h".encode() in _patient_keys(changes, A)
    assert changes[0][FLOOR_KEY] is None and A not in states.deferred.waiting


def test_held_patients_stay_in_memory_until_written_and_a_full_cache_writes_them(tmp_path: Path) -> None:
    states = _states(tmp_path, cache_patients=1)
    a, b = _written_once(states, 0), PatientEntry(PatientState(B))
    _sample(a, 601, 1)
    held = states.changes({A: 0}, {0: {WEARABLE: 1}}, now=1.0)
    assert _patient_keys(held, A) == set()
    states.persist(held, {0: 2}, [A])
    states[B] = b
    _sample(b, 600, 2)
    changes = states.changes({B: 0}, {0: {WEARABLE: 2}}, now=2.0)  # two held in a cache of one
    assert f"{A}|j".encode() in _patient_keys(changes, A) and _patient_keys(changes, B)
    assert changes[0][FLOOR_KEY] is None
    states.persist(changes, {0: 3}, [B])
    assert len(states) == 1


def test_without_a_delay_every_touched_patient_is_written(tmp_path: Path) -> None:
    states = _states(tmp_path, delay=0.0)
    entry = PatientEntry(PatientState(A))
    states[A] = entry
    _sample(entry, 600, 0)
    states.persist(states.changes({A: 1}), {1: 1}, [A])
    _sample(entry, 601, 1)
    changes = states.changes({A: 1}, {1: {WEARABLE: 1}}, now=1.0)
    assert _patient_keys(changes, A) == {f"{A}|j".encode()} and FLOOR_KEY not in changes[1]
