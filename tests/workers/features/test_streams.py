"""Lateness per stream (biometrics, reports), the fold floor, eviction and persistence."""

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
    symptom,
)
from workers.features.patient import PatientState, WindowConfig, day_date
from workers.features.streams import BIOMETRICS, REPORTS, StreamClock
from workers.validation.dedup import DedupWindow
from workers.validation.exceptions import Duplicate, LateEvent

D0 = T0 // DAY_MS


def kind(e):
    if "symptom_type" in e:
        return "SymptomReport"
    return "AssessmentResult" if "instrument" in e else "BiometricSample"


def feed(state, events):
    return [state.ingest(kind(e), e, NOW) for e in events]


def hr(day, minute, value, **over):
    return biometric("HEART_RATE", T0 + day * DAY_MS + minute * MIN_MS, value, **over)


def final_by_day(outputs):
    """Last published revision of each day."""
    out = {}
    for f in outputs:
        if f["date"] not in out or f["revision"] >= out[f["date"]]["revision"]:
            out[f["date"]] = f
    return out


def close(x, y):
    if x is None or y is None:
        return x is y
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)


def test_lateness_boundary_is_per_stream_when_another_stream_is_60_days_ahead():
    state = PatientState(PATIENT)
    assert feed(state, [hr(40, 0, 70.0), symptom(T0 + 100 * DAY_MS, "ANXIETY", 5)]) == [None, None]
    mark = T0 + 40 * DAY_MS
    folds = biometric("HEART_RATE", mark - int(29.9 * DAY_MS), 81.0)
    late = biometric("HEART_RATE", mark - int(30.1 * DAY_MS), 82.0)
    assert state.ingest_biometric(folds, NOW) is None
    err = state.ingest_biometric(late, NOW)
    assert isinstance(err, LateEvent) and err.error_class == "LateEvent"
    assert "30.10 days behind the biometrics watermark" in err.reason
    day = folds["event_time"] // DAY_MS
    assert state.days[day].moments("HEART_RATE").mean == 81.0
    assert (
        late["event_time"] // DAY_MS not in state.days or not state.days[late["event_time"] // DAY_MS].series
    )
    # the reports stream is judged against its own watermark
    reports_mark = T0 + 100 * DAY_MS
    assert state.ingest_symptom(symptom(reports_mark - int(29.9 * DAY_MS), "FATIGUE", 3), NOW) is None
    err = state.ingest_symptom(symptom(reports_mark - int(30.1 * DAY_MS), "FATIGUE", 3), NOW)
    assert isinstance(err, LateEvent) and "reports watermark" in err.reason
    assert state.rejected["LateEvent"] == 2


def test_exact_boundary_millisecond():
    state = PatientState(PATIENT)
    feed(state, [hr(40, 0, 70.0)])
    edge = T0 + 40 * DAY_MS - 30 * DAY_MS
    assert state.ingest_biometric(biometric("HEART_RATE", edge, 60.0), NOW) is None
    assert isinstance(state.ingest_biometric(biometric("HEART_RATE", edge - 1, 60.0), NOW), LateEvent)


def backlog_events(rng):
    """60 days of reports and of biometrics (HR every 20 min, shuffled within each day)."""
    reports, biometrics = [], []
    for day in range(60):
        reports.append(symptom(T0 + day * DAY_MS + 20 * HOUR_MS, "ANXIETY", day % 11))
        if day % 14 == 3:
            reports.append(phq9(T0 + day * DAY_MS + 21 * HOUR_MS, day % 20))
        samples = [hr(day, m, float(rng.randint(50, 120))) for m in range(0, 1440, 20)]
        rng.shuffle(samples)
        biometrics.extend(samples)
    return reports, biometrics


def test_backlogged_stream_folds_into_the_right_days_and_matches_the_reference():
    """Reports read to their end first, then 60 days of biometrics: nothing is late."""
    rng = random.Random(11)
    reports, biometrics = backlog_events(rng)
    dup = dict(biometrics[-50])  # day 59: still within its stream's horizon
    malformed = hr(30, 7, "fast")
    genuinely_late = hr(5, 3, 99.0)  # 30+ days behind biometrics once they reach day 36
    state = PatientState(PATIENT)
    out = feed(state, reports)
    assert out == [None] * len(reports)
    errors = feed(state, biometrics[:2600])  # biometrics up to ~day 36
    errors += [state.ingest_biometric(genuinely_late, NOW), state.ingest_biometric(malformed, NOW)]
    errors += feed(state, biometrics[2600:] + [dup])
    assert [type(e).__name__ for e in errors if e is not None] == ["LateEvent", "InvalidType", "Duplicate"]
    state.flush_revisions()
    final = final_by_day(state.drain())
    assert set(final) == {day_date(D0 + d) for d in range(59)}  # day 59 is still open
    for day in range(60):
        f = final.get(day_date(D0 + day)) or state.features(D0 + day)
        values = [e["value"] for e in biometrics if e["event_time"] // DAY_MS == D0 + day]
        assert f["missing"] is False
        assert close(f["heart_rate_mean"], statistics.fmean(values))
        assert close(f["heart_rate_std"], statistics.stdev(values))
        assert (f["heart_rate_min"], f["heart_rate_max"]) == (min(values), max(values))
        assert f["symptom_severity_mean"] == day % 11
        assert f["phq9_total"] == (day % 20 if day % 14 == 3 else None)
    # the same events in arrival order give the same final aggregates
    merged = sorted(reports + biometrics, key=lambda e: e["event_time"])
    live = PatientState(PATIENT)
    feed(live, merged)
    live.flush_revisions()
    reference = final_by_day(live.drain())
    for day, f in final.items():
        for key in ("heart_rate_mean", "steps_total", "symptom_severity_mean", "completeness"):
            assert close(f[key], reference[day][key]), (day, key)
        assert f["rolling_7d"].keys() == reference[day]["rolling_7d"].keys()
        for key, value in f["rolling_7d"].items():
            assert close(value, reference[day]["rolling_7d"][key]), (day, key)


def test_duplicates_of_a_backlogged_stream_are_still_detected():
    state = PatientState(PATIENT)
    feed(state, [symptom(T0 + 50 * DAY_MS, "ANXIETY", 4)])
    events = [hr(2, m, 60.0 + m % 7) for m in range(0, 600, 10)]
    assert feed(state, events) == [None] * len(events)
    again = feed(state, [dict(e) for e in events[:5]])
    assert all(isinstance(e, Duplicate) for e in again)  # 48 days behind the reports stream
    m = state.days[D0 + 2].moments("HEART_RATE")
    assert m.n == len(events) and close(m.mean, statistics.fmean(e["value"] for e in events))


def test_an_unseen_stream_may_bring_anything_within_the_retention_cap():
    state = PatientState(PATIENT)
    feed(state, [symptom(T0 + 100 * DAY_MS, "ANXIETY", 4)])
    assert state.ingest_biometric(hr(11, 0, 70.0), NOW) is None  # 89 days behind: folds
    err = state.ingest_biometric(hr(9, 0, 70.0), NOW)  # 91 days behind the newest event
    assert isinstance(err, LateEvent) and "retention 90 days" in err.reason


def test_a_quiet_stream_keeps_days_until_the_retention_cap_evicts_them():
    state = PatientState(PATIENT)
    feed(state, [symptom(T0 + d * DAY_MS + 20 * HOUR_MS, "ANXIETY", 2) for d in range(6)])
    feed(state, [hr(d, 600, 70.0) for d in range(80)])
    assert min(state.days) == D0  # reports may still fold into day 0 (5 - 30 days)
    assert state.ingest_symptom(symptom(T0 + HOUR_MS, "FATIGUE", 6), NOW) is None
    feed(state, [hr(120, 0, 70.0)])  # cap: floor = day 30
    assert min(state.days) == D0 + 30 - 7
    assert state.clock.floor == T0 + 30 * DAY_MS
    err = state.ingest_symptom(symptom(T0 + 29 * DAY_MS, "FATIGUE", 6), NOW)
    assert isinstance(err, LateEvent) and "oldest retained day" in err.reason
    assert state.ingest_symptom(symptom(T0 + 30 * DAY_MS, "FATIGUE", 6), NOW) is None


def test_eviction_follows_the_slowest_stream_and_memory_is_capped():
    both = PatientState(PATIENT)
    for d in range(60):
        feed(both, [hr(d, 600, 70.0), symptom(T0 + d * DAY_MS + 20 * HOUR_MS, "ANXIETY", 2)])
    floor_day = (T0 + 59 * DAY_MS + 10 * HOUR_MS - 30 * DAY_MS) // DAY_MS
    assert both.clock.floor // DAY_MS == floor_day
    assert min(both.days) == floor_day - 7
    alone = PatientState(PATIENT)  # no reports yet: they could arrive down to the cap
    for d in range(200):
        feed(alone, [hr(d, 600, 70.0)])
    assert len(alone.days) == 90 + 7 + 1
    # ids live in their day windows (4 bytes each) and go with them
    assert sum(len(v) for d in alone.days for v in alone.days[d].seen.values()) == 90 + 7 + 1


def test_a_backfill_before_the_first_day_publishes_the_days_between_as_missing():
    state = PatientState(PATIENT)
    feed(state, [symptom(T0 + d * DAY_MS + 20 * HOUR_MS, "ANXIETY", 2) for d in range(10, 21)])
    state.drain()
    assert state.ingest_biometric(hr(5, 0, 64.0), NOW) is None
    markers = state.drain()
    assert [(f["date"], f["revision"], f["missing"]) for f in markers] == [
        (day_date(D0 + d), 0, True) for d in range(6, 10)
    ]
    state.flush_revisions()
    day5 = state.drain()[0]
    assert (day5["date"], day5["revision"], day5["heart_rate_mean"]) == (day_date(D0 + 5), 0, 64.0)
    assert state.ingest_biometric(hr(7, 0, 66.0), NOW) is None
    state.flush_revisions()
    revised = {f["date"]: f for f in state.drain()}
    assert revised[day_date(D0 + 7)]["revision"] == 1 and revised[day_date(D0 + 7)]["missing"] is False


def test_state_round_trips_mid_backlog_and_continues_identically():
    rng = random.Random(12)
    reports, biometrics = backlog_events(rng)
    events = reports + biometrics
    a, b = PatientState(PATIENT), PatientState(PATIENT)
    feed(a, events[:2000])
    feed(b, events[:2000])
    data = json.loads(json.dumps(b.to_dict()))
    assert data["version"] == 3
    b = PatientState.from_dict(data)
    a.drain()
    feed(a, events[2000:] + events[1990:2000])
    feed(b, events[2000:] + events[1990:2000])
    assert a.to_dict() == b.to_dict()
    assert a.drain() == b.drain()


def test_version_1_state_loads_with_every_stream_at_the_old_watermark():
    wm = T0 + 40 * DAY_MS
    old = {
        "patient_id": PATIENT,
        "watermark": wm,
        "cursor": D0 + 38,
        "start_day": D0 + 30,
        "days": [],
        "dedup": DedupWindow().to_dict(),
        "streams": {"dev-1|HEART_RATE": wm},
        "assessments": {},
        "norm": {},
        "seen": ["HEART_RATE"],
        "rejected": {"LateEvent": 3},
    }
    state = PatientState.from_dict(json.loads(json.dumps(old)))
    assert state.clock.marks == {BIOMETRICS: wm, REPORTS: wm}
    assert state.watermark == wm and state.rejected == {"LateEvent": 3}
    assert isinstance(state.ingest_symptom(symptom(wm - 31 * DAY_MS, "ANXIETY", 1), NOW), LateEvent)
    assert state.ingest_biometric(biometric("HEART_RATE", wm - 29 * DAY_MS, 60.0), NOW) is None
    feed(state, [hr(45, 0, 60.0), symptom(T0 + 44 * DAY_MS, "ANXIETY", 1)])
    assert state.clock.floor == T0 + 14 * DAY_MS  # the slowest stream - 30 days, not the cap
    with pytest.raises(ValueError, match="unknown PatientState version"):
        PatientState.from_dict({**state.to_dict(), "version": 9})


def test_window_config_rejects_inconsistent_horizons():
    with pytest.raises(ValueError, match="retention_ms"):
        WindowConfig(retention_ms=10 * DAY_MS)
    with pytest.raises(ValueError, match="dedup_horizon_ms"):
        WindowConfig(dedup_horizon_ms=20 * DAY_MS)
    with pytest.raises(ValueError, match="retention_ms"):
        StreamClock(lateness_ms=30 * DAY_MS, retention_ms=DAY_MS)


def test_stream_clock_floor_never_moves_back():
    clock = StreamClock(lateness_ms=30 * DAY_MS, retention_ms=90 * DAY_MS)
    assert clock.late_reason(BIOMETRICS, 0) is None
    clock.observe(BIOMETRICS, 200 * DAY_MS)
    assert clock.floor == 110 * DAY_MS  # reports unseen: the cap
    clock.observe(REPORTS, 150 * DAY_MS)
    assert clock.floor == 120 * DAY_MS  # both seen: the slowest stream - lateness
    clock.observe(REPORTS, 140 * DAY_MS)  # older than its mark: no change
    assert clock.marks == {BIOMETRICS: 200 * DAY_MS, REPORTS: 150 * DAY_MS}
    assert clock.late_reason(REPORTS, 121 * DAY_MS) is None
    assert clock.late_reason(REPORTS, 119 * DAY_MS) is not None
    restored = StreamClock.from_dict(
        json.loads(json.dumps(clock.to_dict())), lateness_ms=30 * DAY_MS, retention_ms=90 * DAY_MS
    )
    assert restored.to_dict() == clock.to_dict()
