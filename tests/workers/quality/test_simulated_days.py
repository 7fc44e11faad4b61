"""Quality of realistic patient-days: the simulator's wearable days through PatientState.

A healthy day meets the standards; a device gap, many outliers or unit mismatches fail,
each measure checked against a reference computed here from the same samples.
"""

from datetime import UTC, date, datetime
from statistics import median_low
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from connectors.simulator.cohort import simulate
from connectors.simulator.signals import day_samples
from tests.workers.features.factories import PATIENT, symptom
from workers.features.patient import DAY_MS, PatientState
from workers.validation.catalog import METRICS

START = date(2026, 1, 5)
D0 = (START - date(1970, 1, 1)).days
DAY = D0 + 3  # the day under test: its night and the 3 days before it are recorded
NOW = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp() * 1000)


def ms(when):
    return int(when.timestamp() * 1000)


def wearable_days(n=5, seed=3):
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        day = date.fromordinal(START.toordinal() + t)
        out += day_samples(
            rng, patient_id=PATIENT, device_id="dev-1", vendor="fitbit", tz=ZoneInfo("UTC"), day=day, mood=0.0
        )
    return out


def on_day(sample, day=DAY):
    return ms(sample["event_time"]) // DAY_MS == day


def fold(samples, reports=()):
    state = PatientState(PATIENT)
    errors = [state.ingest("BiometricSample", s, NOW) for s in sorted(samples, key=lambda s: s["event_time"])]
    for r in reports:
        assert state.ingest_symptom(r, NOW) is None
    return state, errors


def test_a_healthy_simulated_day_meets_the_standards():
    state, errors = fold(wearable_days())
    assert errors == [None] * len(errors)
    f = state.features(DAY)
    assert f["completeness"] == 1.0 and f["consistency"] == 1.0
    assert f["outlier_share"] < 0.10
    assert f["meets_quality_standards"] is True
    assert state.expected_metrics(DAY) == {
        "HEART_RATE",
        "HRV_RMSSD",
        "RESTING_HEART_RATE",
        "STEPS",
        "SLEEP_STAGE",
    }


@pytest.mark.parametrize("hours", [8, 12])
def test_a_device_gap_of_a_third_of_the_day_or_more_fails(hours):
    samples = wearable_days()
    gap = (DAY * DAY_MS + 8 * 3_600_000, DAY * DAY_MS + (8 + hours) * 3_600_000)
    kept = [s for s in samples if not gap[0] <= ms(s["event_time"]) < gap[1]]
    state, _ = fold(kept)
    wear = min(1.0, (24 - hours) / 22)
    expected = (wear + wear + 1 + 1 + 1) / 5  # HR and steps follow wear; RHR, HRV, sleep present
    f = state.features(DAY)
    assert f["completeness"] == pytest.approx(expected)
    assert f["meets_quality_standards"] is False


def test_a_whole_day_without_the_device_fails_even_with_reports():
    samples = [s for s in wearable_days() if not on_day(s)]
    report = symptom(DAY * DAY_MS + 20 * 3_600_000, "ANXIETY", 3)
    state, _ = fold(samples, [report])
    f = state.features(DAY)
    assert f["missing"] is False and f["symptom_severity_mean"] == 3
    # of the 5 expected metrics only the part of the night recorded before midnight is left
    night = [
        x["value"]
        for x in samples
        if x["metric"] == "SLEEP_STAGE"
        and (ms(x["event_time"]) + x["value"] * 1000 + 6 * 3_600_000) // DAY_MS == DAY
    ]
    assert night and f["completeness"] == pytest.approx(min(1.0, sum(night) / 60 / 240) / 5)
    assert f["meets_quality_standards"] is False


def test_many_outliers_fail_and_the_share_matches_a_median_mad_reference():
    samples = wearable_days()
    heart = [s for s in samples if on_day(s) and s["metric"] == "HEART_RATE"]
    for s in heart[::4]:  # a quarter of the day's heart rate at 30 beats/min (atypical)
        s["value"] = 30.0
    state, _ = fold(samples)
    accepted = [s for s in samples if on_day(s)]
    spec = METRICS["HEART_RATE"]
    typical = [s["value"] for s in heart if spec.typ_lo <= s["value"] <= spec.typ_hi]
    med = median_low(typical)
    mad = max(median_low([abs(v - med) for v in typical]), 1.0)
    robust = sum(abs(v - med) > 3.5 * mad / 0.6745 for v in typical)
    bound = len(heart) - len(typical)
    f = state.features(DAY)
    assert f["outlier_share"] == pytest.approx((bound + robust) / len(accepted))
    assert f["outlier_share"] >= 0.10 and f["meets_quality_standards"] is False


def test_unit_mismatches_fail_on_consistency():
    samples = wearable_days()
    heart = [s for s in samples if on_day(s) and s["metric"] == "HEART_RATE"]
    for s in heart[: int(len(heart) * 0.4)]:
        s["unit"] = "bpm"
    state, errors = fold(samples)
    mismatched = sum(type(e).__name__ == "UnitMismatch" for e in errors)
    assert mismatched == int(len(heart) * 0.4)
    accepted = sum(on_day(s) for s in samples) - mismatched
    f = state.features(DAY)
    assert f["consistency"] == pytest.approx(1 - mismatched / (accepted + mismatched))
    assert f["consistency"] <= 0.8 and f["meets_quality_standards"] is False


def test_simulated_cohort_healthy_days_pass_and_device_gap_days_fail():
    """3 patients x 21 days folded in arrival order, as one partition delivers them."""
    result = simulate(3, 21, 5, START)
    gap = {(t["patient_id"], t["date"]) for t in result.truth if t["device_gap"]}
    states: dict[str, PatientState] = {}
    final = {}
    for delivery in result.deliveries:
        if delivery["record_type"] not in ("BiometricSample", "SymptomReport", "AssessmentResult"):
            continue
        record = delivery["record"]
        state = states.setdefault(record["patient_id"], PatientState(record["patient_id"]))
        state.ingest(delivery["record_type"], record, ms(record["received_time"]))
        for f in state.drain():
            final[(f["patient_id"], f["date"])] = f
    for state in states.values():
        state.flush_revisions()
        for f in state.drain():
            final[(f["patient_id"], f["date"])] = f
    inside = {k: f for k, f in final.items() if START < k[1] < date.fromordinal(START.toordinal() + 20)}
    gap_days = [f for k, f in inside.items() if k in gap]
    near_gap = {(p, date.fromordinal(d.toordinal() + k)) for p, d in gap for k in (-1, 1)}
    healthy = [f for k, f in inside.items() if k not in gap and k not in near_gap]
    assert gap_days and not any(f["meets_quality_standards"] for f in gap_days)
    passing = sum(f["meets_quality_standards"] for f in healthy) / len(healthy)
    assert passing >= 0.9, passing
