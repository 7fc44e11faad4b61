import json
from collections import Counter
from datetime import date

import pytest

from connectors.ehr import FhirMapper
from connectors.simulator import simulate
from connectors.simulator.cohort import MRN_SYSTEM, SIM_KEY
from connectors.simulator.emit import write_fhir, write_fitbit, write_omh
from connectors.wearables.fitbit import parse_fitbit
from connectors.wearables.openmhealth import parse_omh

START = date(2024, 3, 1)


@pytest.fixture(scope="module")
def sim():
    return simulate(4, 30, seed=11, start_date=START)


def test_same_seed_same_cohort(sim):
    again = simulate(4, 30, seed=11, start_date=START)
    assert [d["record"] for d in again.deliveries[:500]] == [d["record"] for d in sim.deliveries[:500]]
    assert again.truth == sim.truth
    other = simulate(4, 30, seed=12, start_date=START)
    assert other.truth != sim.truth


def test_deliveries_are_in_arrival_order_with_late_backfills(sim):
    arrivals = [d["arrival_time"] for d in sim.deliveries]
    assert arrivals == sorted(arrivals)
    assert [d["arrival_order"] for d in sim.deliveries] == list(range(len(sim.deliveries)))
    late = [d for d in sim.deliveries if d["delay_seconds"] > 86400]
    assert late and all(
        d["record"]["received_time"] == d["arrival_time"] for d in late if d["record_type"] != "RAW"
    )


def test_bad_records_are_a_small_marked_share(sim):
    defects = Counter(d["defect"] for d in sim.deliveries if d["defect"])
    share = sum(defects.values()) / len(sim.deliveries)
    assert 0.003 < share < 0.008
    assert set(defects) <= {"out_of_range", "wrong_unit", "future_timestamp", "garbage_bytes"}
    raw = [d for d in sim.deliveries if d["record_type"] == "RAW"]
    assert raw and all(isinstance(d["record"]["raw"], bytes) for d in raw)
    future = [d for d in sim.deliveries if d["defect"] == "future_timestamp"]
    assert all(d["record"]["event_time"] > d["arrival_time"] for d in future)


def test_signals_have_expected_cadence(sim):
    pid = sim.patients[0].patient_id
    clean = [
        d["record"]
        for d in sim.deliveries
        if d["defect"] is None and d["record_type"] == "BiometricSample" and d["record"]["patient_id"] == pid
    ]
    per_metric = Counter(r["metric"] for r in clean)
    worn_days = sum(1 for t in sim.truth if t["patient_id"] == pid and not t["device_gap"])
    assert per_metric["HEART_RATE"] == pytest.approx(288 * worn_days, rel=0.02)
    assert per_metric["STEPS"] == pytest.approx(96 * worn_days, rel=0.02)
    stages = [r for r in clean if r["metric"] == "SLEEP_STAGE"]
    assert all(r["duration_seconds"] % 30 == 0 for r in stages)
    assert {r["sleep_stage"] for r in stages} >= {"AWAKE", "LIGHT", "DEEP", "REM"}
    assert len({r["event_id"] for r in clean}) == len(clean)


@pytest.fixture(scope="module")
def long_sim():
    return simulate(8, 75, seed=3, start_date=START)


def test_truth_medication_response_is_delayed(long_sim):
    sim = long_sim
    assert sim.medication_starts
    for pid, start in sim.medication_starts.items():
        rows = [t for t in sim.truth if t["patient_id"] == pid]
        assert all(r["medication_effect"] == 0 for r in rows[: start + 14])
        meds = [
            d
            for d in sim.deliveries
            if d["record_type"] == "MedicationEvent" and d["record"]["patient_id"] == pid
        ]
        assert meds and meds[0]["record"]["action"] == "STARTED"


def test_assessments_follow_mood_and_item9_only_when_low(long_sim):
    sim = long_sim
    mood = {(t["patient_id"], t["date"]): t["mood"] for t in sim.truth}
    phq = [
        d["record"]
        for d in sim.deliveries
        if d["record_type"] == "AssessmentResult"
        and d["defect"] is None
        and d["record"]["instrument"] == "PHQ9"
    ]
    assert phq
    for rec in phq:
        day = min(
            mood, key=lambda k: (k[0] != rec["patient_id"], abs((k[1] - rec["event_time"].date()).days))
        )
        if rec["item9_positive"]:
            assert mood[day] < -1.8 or abs((day[1] - rec["event_time"].date()).days) <= 1
    low = [r["total"] for r in phq if r["band"] in ("MODERATELY_SEVERE", "SEVERE")]
    assert len(low) < len(phq)


def test_fhir_emitter_round_trips_through_the_mapper(sim, tmp_path):
    write_fhir(sim, tmp_path)
    mapper = FhirMapper(key=SIM_KEY, as_of=START, source="fhir:sim")
    out = list(mapper.map_path(tmp_path))
    assert mapper.summary.rejected == []
    assert {p for p, _, _ in out} == {p.patient_id for p in sim.patients}
    mapped = sorted(
        (r["patient_id"], r["instrument"], tuple(r["item_responses"]))
        for _, t, r in out
        if t == "AssessmentResult"
    )
    truth = sorted(
        (d["record"]["patient_id"], d["record"]["instrument"], tuple(d["record"]["item_responses"]))
        for d in sim.deliveries
        if d["record_type"] == "AssessmentResult" and d["defect"] is None
    )
    assert mapped == truth
    assert MRN_SYSTEM.startswith("urn:oid:")


def test_fitbit_and_omh_emitters_round_trip(sim, tmp_path):
    write_fitbit(sim, tmp_path / "fitbit")
    write_omh(sim, tmp_path / "omh")
    fit = next(p for p in sim.patients if p.vendor == "fitbit")
    parsed = []
    for path in sorted((tmp_path / "fitbit" / fit.patient_id).glob("*.json")):
        parsed += parse_fitbit(
            json.loads(path.read_text()), patient_id=fit.patient_id, device_id=fit.device_id, tz=fit.time_zone
        )
    original = {
        (r["metric"], r["event_time"], r["value"])
        for d in sim.deliveries
        if d["defect"] is None
        and d["record_type"] == "BiometricSample"
        and (r := d["record"])["patient_id"] == fit.patient_id
        and r["metric"] in ("HEART_RATE", "STEPS", "SLEEP_STAGE")
    }
    assert {
        (s["metric"], s["event_time"], s["value"])
        for s in parsed
        if s["metric"] in ("HEART_RATE", "STEPS", "SLEEP_STAGE")
    } == original
    apple = next(p for p in sim.patients if p.vendor == "apple_health")
    points = json.loads((tmp_path / "omh" / f"{apple.patient_id}.json").read_text())
    samples = parse_omh(points, patient_id=apple.patient_id, device_id=apple.device_id)
    assert samples and {s["metric"] for s in samples} == {"HEART_RATE", "STEPS"}
