import json
import math
import random
import statistics

import pytest

from tests.workers.features.factories import (
    DAY_MS,
    HOUR_MS,
    MIN_MS,
    NOW,
    PATIENT,
    T0,
    biometric,
    phq9,
    sleep,
    steps,
    symptom,
)
from workers.features.patient import PatientState, WindowConfig, day_date
from workers.validation.exceptions import Duplicate, LateEvent, OutOfRange, UnitMismatch

D0 = T0 // DAY_MS


def close(x, y):
    if x is None or y is None:
        return x is y
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)


def feed(state, events, kind="BiometricSample"):
    return [state.ingest(kind, e, NOW) for e in events]


def published(state):
    return {(f["date"], f["revision"]): f for f in state.drain()}


def hr_day(day, rng, n=300):
    return [
        biometric("HEART_RATE", T0 + day * DAY_MS + i * 4 * MIN_MS, rng.uniform(50, 110)) for i in range(n)
    ]


def test_daily_and_hourly_aggregates_match_statistics_reference():
    rng = random.Random(1)
    events = hr_day(0, rng)
    rng.shuffle(events)  # out of order within the day
    state = PatientState(PATIENT)
    assert feed(state, events) == [None] * len(events)
    values = [e["value"] for e in events]
    m = state.days[D0].moments("HEART_RATE")
    assert m.n == len(values)
    assert close(m.mean, statistics.fmean(values))
    assert close(m.std, statistics.stdev(values))
    assert (m.min, m.max) == (min(values), max(values))
    hourly = state.days[D0].hourly("HEART_RATE")
    assert set(hourly) == {(e["event_time"] - T0) // HOUR_MS for e in events}
    for hour in hourly:
        ref = [e["value"] for e in events if (e["event_time"] - T0) // HOUR_MS == hour]
        assert hourly[hour].n == len(ref)
        assert close(hourly[hour].mean, statistics.fmean(ref))
        assert close(hourly[hour].std, statistics.stdev(ref))


def test_day_closes_after_grace_and_publishes_exact_features():
    rng = random.Random(2)
    state = PatientState(PATIENT, WindowConfig(grace_ms=HOUR_MS))
    events = hr_day(0, rng)
    events += [steps(T0 + h * HOUR_MS, rng.randint(0, 3000), 3600) for h in range(24)]
    events += [
        biometric("RESTING_HEART_RATE", T0 + 8 * HOUR_MS, 58),
        biometric("HRV_RMSSD", T0 + 8 * HOUR_MS, 42),
    ]
    events += [
        symptom(T0 + h * HOUR_MS, t, s)
        for h, t, s in [(9, "ANXIETY", 4), (12, "ANXIETY", 7), (20, "FATIGUE", 2)]
    ]
    for e in events:
        kind = "SymptomReport" if "symptom_type" in e else "BiometricSample"
        assert state.ingest(kind, e, NOW) is None
    assert state.drain() == []
    feed(state, [biometric("HEART_RATE", T0 + DAY_MS + HOUR_MS - 1, 70)])
    assert state.drain() == []  # end of day + grace not yet reached
    feed(state, [biometric("HEART_RATE", T0 + DAY_MS + HOUR_MS, 70)])
    (f,) = state.drain()
    hr = [e["value"] for e in events if e.get("metric") == "HEART_RATE"]
    assert (f["date"], f["revision"], f["missing"], f["late_events"]) == (day_date(D0), 0, False, 0)
    assert close(f["heart_rate_mean"], statistics.fmean(hr))
    assert close(f["heart_rate_std"], statistics.stdev(hr))
    assert f["heart_rate_min"] == min(hr) and f["heart_rate_max"] == max(hr)
    assert close(f["steps_total"], sum(e["value"] for e in events if e.get("metric") == "STEPS"))
    assert f["resting_heart_rate"] == 58 and f["hrv_rmssd"] == 42 and f["hrv_sdnn"] is None
    assert f["symptom_severity_by_type"] == {"ANXIETY": 5.5, "FATIGUE": 2.0}
    assert close(f["symptom_severity_mean"], 13 / 3)
    assert f["sleep_total_minutes"] is None and f["phq9_total"] is None


def test_sleep_episode_across_midnight_is_attributed_to_wake_date():
    state = PatientState(PATIENT)
    start = T0 + 22 * HOUR_MS  # 22:00 on D0 -> night of D0+1
    stages = [
        ("LIGHT", 3600),
        ("DEEP", 5400),
        ("AWAKE", 600),
        ("REM", 5400),
        ("LIGHT", 9000),
        ("AWAKE", 1200),
    ]
    t = start
    for stage, secs in stages:
        assert state.ingest_biometric(sleep(t, stage, secs), NOW) is None
        t += secs * 1000
    night = state.days[D0 + 1].sleep_seconds()
    assert night is not None and state.days[D0].sleep is None
    f = state.features(D0 + 1)
    asleep = 3600 + 5400 + 5400 + 9000
    assert close(f["sleep_total_minutes"], asleep / 60)
    assert close(f["sleep_deep_minutes"], 90) and close(f["sleep_rem_minutes"], 90)
    assert close(f["sleep_light_minutes"], 210) and close(f["sleep_awake_minutes"], 30)
    assert close(f["sleep_efficiency"], asleep / (asleep + 1800))


def test_late_within_horizon_folds_in_and_revises():
    rng = random.Random(3)
    state = PatientState(PATIENT)
    day0 = hr_day(0, rng)
    feed(state, day0)
    feed(state, hr_day(5, rng, n=30))  # reaches D5 01:56: closes D0..D4
    first = published(state)
    assert first[(day_date(D0), 0)]["missing"] is False
    for k in range(1, 5):
        assert first[(day_date(D0 + k), 0)]["missing"] is True
        assert first[(day_date(D0 + k), 0)]["heart_rate_mean"] is None
    late = [
        biometric("HEART_RATE", T0 + 3 * HOUR_MS + 7, 150.0),
        biometric("HEART_RATE", T0 + 2 * DAY_MS + 5, 66.0),
    ]
    assert feed(state, late) == [None, None]
    feed(state, [biometric("HEART_RATE", T0 + 5 * DAY_MS + 2 * HOUR_MS, 70)])  # next tick
    out = published(state)
    rev = out[(day_date(D0), 1)]
    ref = [e["value"] for e in day0] + [150.0]
    assert close(rev["heart_rate_mean"], statistics.fmean(ref))
    assert close(rev["heart_rate_std"], statistics.stdev(ref))
    assert rev["late_events"] == 1
    d2 = out[(day_date(D0 + 2), 1)]  # a missing day that got data: revision 1
    assert d2["missing"] is False and d2["heart_rate_mean"] == 66.0
    assert close(d2["rolling_7d"]["heart_rate_mean_mean7"], statistics.fmean([statistics.fmean(ref), 66.0]))


def test_beyond_horizon_is_late_event_and_changes_nothing():
    rng = random.Random(4)
    state = PatientState(PATIENT)
    feed(state, hr_day(0, rng, n=20))
    feed(state, [biometric("HEART_RATE", T0 + 40 * DAY_MS, 70)])
    before = state.to_dict()
    err = state.ingest_biometric(biometric("HEART_RATE", T0 + 10 * DAY_MS - 1, 70), NOW)
    assert isinstance(err, LateEvent) and err.error_class == "LateEvent"
    assert state.rejected["LateEvent"] == 1
    after = state.to_dict()
    after["rejected"].pop("LateEvent")
    assert after == before
    assert state.ingest_biometric(biometric("HEART_RATE", T0 + 10 * DAY_MS, 70), NOW) is None


def test_duplicate_is_dropped_and_lowers_consistency():
    state = PatientState(PATIENT)
    events = [biometric("HEART_RATE", T0 + i * MIN_MS, 60 + i % 5) for i in range(20)]
    feed(state, events)
    dup = state.ingest_biometric(dict(events[3]), NOW)
    assert isinstance(dup, Duplicate) and not dup.hard
    m = state.days[D0].moments("HEART_RATE")
    assert m.n == 20 and close(m.mean, statistics.fmean(e["value"] for e in events))
    assert close(state.features(D0)["consistency"], 1 - 1 / 21)


def test_malformed_events_return_typed_errors_and_are_counted():
    state = PatientState(PATIENT)
    bad_unit = biometric("HEART_RATE", T0, 60, unit="bpm")
    out = [
        state.ingest_biometric(bad_unit, NOW),
        state.ingest_biometric(biometric("HEART_RATE", T0, 300), NOW),
        state.ingest_symptom({"event_id": "x"}, NOW),
    ]
    assert [type(e) for e in out[:2]] == [UnitMismatch, OutOfRange]
    assert out[2].error_class == "MissingField"
    assert state.rejected == {"UnitMismatch": 1, "OutOfRange": 1, "MissingField": 1}
    with pytest.raises(ValueError, match="unsupported"):
        state.ingest("Nonsense", {}, NOW)


def test_phq9_latest_and_change_including_late_insert():
    state = PatientState(PATIENT)
    feed(state, [phq9(T0 + 10 * HOUR_MS, 12), phq9(T0 + 9 * DAY_MS, 18)], "AssessmentResult")
    assert state.features(D0)["phq9_total"] == 12 and state.features(D0)["phq9_change"] is None
    assert state.features(D0 + 9)["phq9_change"] == 6
    feed(state, [biometric("HEART_RATE", T0 + 11 * DAY_MS, 60)])
    state.drain()
    assert state.ingest_assessment(phq9(T0 + 4 * DAY_MS, 20), NOW) is None
    feed(state, [biometric("HEART_RATE", T0 + 11 * DAY_MS + HOUR_MS, 60)])
    out = published(state)
    assert out[(day_date(D0 + 4), 1)]["phq9_change"] == 8
    assert out[(day_date(D0 + 9), 1)]["phq9_change"] == -2  # the next one's change moved


def test_rolling_7d_matches_reference_over_non_missing_days():
    state = PatientState(PATIENT)
    means = {}
    for day in range(10):
        if day in (3, 4):
            continue
        values = [60 + day + (i % 7) for i in range(30)]
        feed(
            state,
            [biometric("HEART_RATE", T0 + day * DAY_MS + i * MIN_MS, v) for i, v in enumerate(values)],
        )
        feed(state, [steps(T0 + day * DAY_MS + 12 * HOUR_MS, 1000 * day, 3600)])
        means[day] = statistics.fmean(values)
    f = state.features(D0 + 9)
    window = [means[d] for d in range(3, 10) if d in means]
    assert f["rolling_7d"]["days_observed7"] == 5
    assert close(f["rolling_7d"]["heart_rate_mean_mean7"], statistics.fmean(window))
    assert close(
        f["rolling_7d"]["steps_total_mean7"],
        statistics.fmean(1000 * d for d in range(3, 10) if d in means),
    )


def test_normalized_z_scores_use_earlier_days_only():
    state = PatientState(PATIENT)
    for day in range(5):
        feed(state, [steps(T0 + day * DAY_MS + HOUR_MS, 1000 * (day + 1), 3600)])
    out = {f["date"]: f for f in state.drain()}
    prior = [1000.0, 2000.0, 3000.0]
    z = (4000 - statistics.fmean(prior)) / statistics.stdev(prior)
    assert close(out[day_date(D0 + 3)]["normalized"]["steps_total"], z)
    assert "steps_total" not in out[day_date(D0 + 1)]["normalized"]


def test_state_round_trips_through_json_and_continues_identically():
    rng = random.Random(5)
    events = hr_day(0, rng, 50) + hr_day(1, rng, 50) + hr_day(2, rng, 50)
    a = PatientState(PATIENT)
    b = PatientState(PATIENT)
    feed(a, events[:80])
    feed(b, events[:80])
    b = PatientState.from_dict(json.loads(json.dumps(b.to_dict())))
    a.drain()
    feed(a, events[80:] + events[:3])
    feed(b, events[80:] + events[:3])
    assert a.to_dict() == b.to_dict()
    assert a.drain() == b.drain()


def test_an_item9_screen_is_a_report_but_no_phq9_total():
    screen = {
        **phq9(T0 + 11 * HOUR_MS, 0),
        "event_id": "screen-1",
        "instrument": "PHQ9_ITEM9",
        "item_responses": [3],
        "total": 3,
        "band": "UNKNOWN",
        "item9_positive": True,
        "loinc_total": "44260-8",
    }
    state = PatientState(PATIENT)
    assert feed(state, [phq9(T0 + 10 * HOUR_MS, 12), screen], "AssessmentResult") == [None, None]
    f = state.features(D0)
    assert (f["phq9_total"], f["phq9_change"]) == (12, None)  # the screen's 3 is not a PHQ-9 total
    assert set(state.assessments) == {"PHQ9"}
    assert state.ingest("AssessmentResult", screen, NOW).error_class == "Duplicate"
