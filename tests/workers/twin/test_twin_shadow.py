"""A model version in shadow, promotion and restore, on the pure functions (no services)."""

from __future__ import annotations

import datetime as dt

import pytest
from twin_factories import PID, year

from schemas.codec import AvroCodec
from workers.pipeline.ingest import Inbound
from workers.pipeline.twin import (
    RESTORE,
    TwinEntry,
    TwinProcessor,
    advance,
    replay,
    replay_entries,
)
from workers.twin import store
from workers.twin.exceptions import StateDecodeError
from workers.twin.serialize import BUDGET_BYTES, serialize, state_digest
from workers.twin.versions import STANDARD, ModelVersion, VersionPlan, registry

NAMES = {
    "features": "PatientDailyFeatures",
    "assessment": "AssessmentResult",
    "medication": "MedicationEvent",
    "genetic": "GeneticProfile",
}
CANDIDATE = ModelVersion("candidate", overrides=(("forecast.POWER", 4), ("forecast.ALPHA_ERR", 0.05)))
VERSIONS = registry({"candidate": dict(CANDIDATE.overrides)})
SHADOWED = VersionPlan(live=STANDARD, shadow=CANDIDATE)
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _log(days: int = 365) -> list[tuple[str, dict]]:
    return [(NAMES[kind], rec) for kind, rec in year(days)]


def _run(records, entry: TwinEntry, plan: VersionPlan, start: int = 0) -> list:
    outputs = []
    for offset, (name, record) in enumerate(records, start):
        outputs.append(advance(entry, name, record, plan=plan, versions=VERSIONS, offset=offset))
        entry.offset = offset
    return outputs


def test_a_shadow_changes_neither_the_live_twin_nor_what_it_publishes():
    log = _log()
    plain, shadowed = TwinEntry(_new()), TwinEntry(_new())
    plain_out = _run(log, plain, VersionPlan())
    shadow_out = _run(log, shadowed, SHADOWED)
    assert serialize(shadowed.state) == serialize(plain.state)
    assert shadow_out == plain_out  # the same updates and alerts, nothing from the shadow
    assert shadowed.shadow is not None and shadowed.shadow.version_id == CANDIDATE.id


def test_a_shadow_from_the_first_input_is_the_twin_its_version_computes_alone():
    log = _log()
    entry = replay_entries(log, plan=SHADOWED, versions=VERSIONS)[PID]
    alone = replay(log, plan=VersionPlan(live=CANDIDATE), versions=VERSIONS)[PID]
    assert entry.shadow is not None
    assert state_digest(entry.shadow.state) == state_digest(alone)
    assert state_digest(entry.shadow.state) != state_digest(entry.state)  # the versions differ


def test_paired_metrics_are_both_twins_progressive_validation_on_the_same_targets():
    entry = replay_entries(_log(), plan=SHADOWED, versions=VERSIONS)[PID]
    paired, live, shadow = entry.shadow.paired, entry.state.severity, entry.shadow.state.severity
    assert paired.pairs == live.published.n == shadow.published.n > 300
    assert paired.live_abs == pytest.approx(live.published.total)
    assert paired.shadow_abs == pytest.approx(shadow.published.total)
    assert paired.intervals == live.conformal.scored == shadow.conformal.scored
    assert paired.live_covered == live.conformal.covered
    assert paired.shadow_covered == shadow.conformal.covered
    assert paired.phq9_pairs == entry.state.phq9_model.model.n > 10
    assert paired.shadow_better + paired.live_better <= paired.pairs


def test_live_and_shadow_state_of_a_year_fit_the_budget_together():
    entry = replay_entries(_log(), plan=SHADOWED, versions=VERSIONS)[PID]
    doc = store.twin_document(entry, serialize(entry.state), now=NOW)
    assert doc["total_state_bytes"] == doc["state_bytes"] + doc["shadow"]["state_bytes"]
    assert doc["total_state_bytes"] < BUDGET_BYTES
    assert doc["model_version_id"] == STANDARD.id


def test_the_twin_document_round_trips_with_its_shadow():
    entry = replay_entries(_log(120), plan=SHADOWED, versions=VERSIONS)[PID]
    entry.offset, entry.snapshot_seq = 500, 4
    loaded = store.entry_of(store.twin_document(entry, serialize(entry.state), now=NOW))
    assert state_digest(loaded.state) == state_digest(entry.state)
    assert state_digest(loaded.shadow.state) == state_digest(entry.shadow.state)
    assert loaded.shadow.paired == entry.shadow.paired
    assert (loaded.offset, loaded.version_id, loaded.pinned, loaded.snapshot_seq) == (
        500,
        STANDARD.id,
        False,
        4,
    )


def test_promotion_hands_the_twin_the_shadow_state_and_keeps_the_replaced_one():
    log = _log()
    entry = TwinEntry(_new())
    _run(log[:250], entry, SHADOWED)
    before = serialize(entry.state)
    entry.snapshot_seq = entry.state.snapshots
    _run(log[250:], entry, VersionPlan(live=CANDIDATE), start=250)
    # the shadow ran from the first input: the twin is what the candidate computes alone
    alone = replay(log, plan=VersionPlan(live=CANDIDATE), versions=VERSIONS)[PID]
    assert state_digest(entry.state) == state_digest(alone)
    assert entry.version_id == CANDIDATE.id and entry.shadow is None
    [retired] = entry.retired
    assert serialize(retired.state) == before and retired.model_version_id == STANDARD.id
    assert entry.snapshot_note["promoted_from"] == STANDARD.id
    numbered = store._numbered(entry)
    # the replaced twin follows the last stored snapshot; the new one comes after it
    seq = entry.snapshot_seq
    assert [n for n, *_ in numbered] == [seq + 1, max(seq + 2, entry.state.snapshots)]
    assert [v for _, _, v, _ in numbered[:2]] == [STANDARD.id, CANDIDATE.id]


def test_a_twin_without_a_shadow_carries_on_under_the_promoted_version():
    log = _log(60)
    entry = TwinEntry(_new())
    _run(log[:40], entry, VersionPlan())
    _run(log[40:], entry, VersionPlan(live=CANDIDATE), start=40)
    assert entry.version_id == CANDIDATE.id and not entry.retired


def _restore(state, *, version: str, pin: bool, snapshot: int = 2, patient: str = PID) -> dict:
    return {
        "event_id": "r-1",
        "patient_id": patient,
        "snapshot": snapshot,
        "model_version_id": version,
        "pin": pin,
        "state": serialize(state),
        "audit_event_id": "au-1",
    }


def test_a_restore_brings_back_the_snapshot_and_pins_it_to_its_version():
    log = _log(200)
    entry = TwinEntry(_new())
    _run(log[:100], entry, VersionPlan(live=CANDIDATE))
    snapshot = serialize(entry.state)
    _run(log[100:150], entry, VersionPlan(live=CANDIDATE), start=100)
    # promoted meanwhile; the operator rolls the patient back to the candidate's snapshot
    record = {**_restore(entry.state, version=CANDIDATE.id, pin=True), "state": snapshot}
    assert advance(entry, RESTORE, record, plan=SHADOWED, versions=VERSIONS, offset=150) is None
    assert serialize(entry.state) == snapshot
    assert entry.pinned and entry.version_id == CANDIDATE.id and entry.shadow is None
    assert entry.snapshot_due and entry.snapshot_note["restored_from"] == 2
    _run(log[150:], entry, SHADOWED, start=151)  # pinned: no shadow, the candidate's parameters
    assert entry.shadow is None and entry.version_id == CANDIDATE.id
    reference = TwinEntry(_new())
    _run(log[:100], reference, VersionPlan(live=CANDIDATE))
    _run(log[150:], reference, VersionPlan(live=CANDIDATE), start=150)
    assert state_digest(entry.state) == state_digest(reference.state)


def test_a_restore_to_an_unknown_version_follows_the_live_one():
    entry = TwinEntry(_new())
    _run(_log(30), entry, VersionPlan())
    record = _restore(entry.state, version="novamind-twin/1:000000000000", pin=True)
    advance(entry, RESTORE, record, plan=SHADOWED, versions=VERSIONS, offset=31)
    assert not entry.pinned and entry.version_id == STANDARD.id


def test_a_restore_of_another_patients_state_is_refused():
    entry = TwinEntry(_new())
    other = _new("p_" + "cd" * 16)
    with pytest.raises(StateDecodeError):
        advance(
            entry,
            RESTORE,
            _restore(other, version=STANDARD.id, pin=False),
            plan=SHADOWED,
            versions=VERSIONS,
            offset=1,
        )


def test_the_processor_dead_letters_a_restore_that_does_not_decode():
    codec = AvroCodec()
    record = _restore(_new(), version=STANDARD.id, pin=False) | {
        "event_time": NOW,
        "received_time": NOW,
        "source": "operator",
        "state": b"NMTW1" + b"\x00" * 40,
    }
    message = Inbound(PID.encode(), codec.encode_dict("TwinRestore", record), "twin-inputs", 0, 7, 0)
    entries = {PID: TwinEntry(_new())}
    result = TwinProcessor(codec=codec, plan=SHADOWED, versions=VERSIONS).process([message], entries)
    assert [d["error_class"] for d in result.dead_letters] == ["StateDecodeError"]
    assert entries[PID].offset == -1 and not result.changed


def test_the_processor_counts_a_batch_of_pairs_and_restores():
    codec = AvroCodec()
    entry = TwinEntry(_new())
    _run(_log(40), entry, VersionPlan())
    record = _restore(entry.state, version=STANDARD.id, pin=False) | {
        "event_time": NOW,
        "received_time": NOW,
        "source": "operator",
    }
    message = Inbound(PID.encode(), codec.encode_dict("TwinRestore", record), "twin-inputs", 0, 99, 0)
    entries = {PID: TwinEntry(_new())}
    result = TwinProcessor(codec=codec, plan=SHADOWED, versions=VERSIONS).process([message], entries)
    assert result.restored == [PID] and not result.updates
    assert state_digest(entries[PID].state) == state_digest(entry.state)


def _new(patient: str = PID):
    from workers.twin.twin import new_twin

    return new_twin(patient)
