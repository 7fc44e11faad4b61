import pytest

from tests.workers.features.factories import (
    DAY_MS,
    HOUR_MS,
    MIN_MS,
    NOW,
    PATIENT,
    T0,
    biometric,
    sleep,
    steps,
)
from workers.features.day import ACCEPTED, DUPLICATES, NON_MONOTONIC, UNIT_MISMATCH, DayWindow
from workers.features.patient import PatientState
from workers.quality.scoring import (
    completeness,
    consistency,
    day_quality,
    meets_quality_standards,
    outlier_share,
    robust_outliers,
    wear_hours,
)

D0 = T0 // DAY_MS


@pytest.mark.parametrize(
    ("outliers", "consistent", "complete", "expected"),
    [
        (0.0999, 0.81, 0.91, True),
        (0.10, 0.81, 0.91, False),
        (0.0, 0.80, 0.91, False),
        (0.0, 0.8001, 0.91, True),
        (0.0, 1.0, 0.90, False),
        (0.0, 1.0, 0.9001, True),
    ],
)
def test_meets_quality_standards_boundaries(outliers, consistent, complete, expected):
    assert meets_quality_standards(outliers, consistent, complete) is expected


def test_robust_outliers_median_mad():
    hist = [0] * 100
    for i, c in {50: 40, 49: 20, 51: 20, 48: 5, 52: 5, 90: 3, 10: 2}.items():
        hist[i] = c
    # median bin 50, MAD = 1 bin -> limit 3.5 / 0.6745 = 5.19 bins: 90 and 10 are outliers
    assert robust_outliers(hist, 1.0) == 5
    assert robust_outliers([0, 5, 0], 1.0) == 0  # fewer than 10 samples: no robust test


def heart_rate_day(state, minutes, value=lambda i: 60 + i % 5, hours=24, step=1):
    for h in range(hours):
        for m in range(minutes):
            t = T0 + h * HOUR_MS + m * step * MIN_MS
            assert state.ingest_biometric(biometric("HEART_RATE", t, value(h * 60 + m)), NOW) is None


def test_completeness_heart_rate_against_the_device_cadence():
    for minutes in (60, 12):  # one a minute (Fitbit intraday), one per 5 minutes (Apple, simulator)
        state = PatientState(PATIENT)
        heart_rate_day(state, minutes, step=60 // minutes)
        assert completeness(state.days[D0], {"HEART_RATE"}) == 1.0
    short = PatientState(PATIENT)
    heart_rate_day(short, 12, hours=11, step=5)  # 11 h worn of the 22 expected
    assert completeness(short.days[D0], {"HEART_RATE"}) == 0.5
    charged = PatientState(PATIENT)
    heart_rate_day(charged, 12, hours=22, step=5)  # off the wrist 2 h to charge: complete
    assert completeness(charged.days[D0], {"HEART_RATE"}) == 1.0


def test_wear_hours_scores_sparse_hours_against_the_median_cadence():
    state = PatientState(PATIENT)
    heart_rate_day(state, 12, hours=20, step=5)
    for h in range(20, 24):  # the last 4 hours: 3 samples instead of 12
        for m in range(3):
            t = T0 + h * HOUR_MS + m * 20 * MIN_MS
            assert state.ingest_biometric(biometric("HEART_RATE", t, 61), NOW) is None
    series = state.days[D0].series["HEART_RATE"]
    assert wear_hours(series) == pytest.approx(20 + 4 * 3 / 12)
    assert completeness(state.days[D0], {"HEART_RATE"}) == pytest.approx(21 / 22)
    assert wear_hours(None) == 0.0


def test_completeness_averages_expected_streams_and_sleep():
    state = PatientState(PATIENT)
    heart_rate_day(state, 60)
    state.ingest_biometric(sleep(T0 + 1 * HOUR_MS, "LIGHT", 7200), NOW)  # 120 of 240 min
    w = state.days[D0]
    assert completeness(w, {"HEART_RATE", "SLEEP_STAGE"}) == pytest.approx(0.75)
    assert completeness(w, {"HEART_RATE", "SLEEP_STAGE", "HRV_RMSSD"}) == pytest.approx(1.5 / 3)


def test_outlier_share_counts_bounds_and_robust_outliers():
    state = PatientState(PATIENT)
    values = [70] * 90 + [71] * 5 + [210] * 3 + [150] * 2  # 210: atypical; 150: robust outlier
    for i, v in enumerate(values):
        state.ingest_biometric(biometric("HEART_RATE", T0 + i * MIN_MS, v), NOW)
    assert outlier_share(state.days[D0]) == pytest.approx(5 / 100)


def test_daily_steps_above_bound_are_outliers():
    state = PatientState(PATIENT)
    for h in range(24):
        state.ingest_biometric(steps(T0 + h * HOUR_MS, 2600, 3600), NOW)  # 62,400 steps
    assert outlier_share(state.days[D0]) == 1.0


def test_consistency_counts_units_order_and_duplicates():
    w = DayWindow(D0)
    assert consistency(w) == 1.0
    w.q[ACCEPTED], w.q[UNIT_MISMATCH], w.q[DUPLICATES], w.q[NON_MONOTONIC] = 16, 2, 2, 1
    assert consistency(w) == pytest.approx(1 - 5 / 20)
    state = PatientState(PATIENT)
    sync = T0 + HOUR_MS  # one delivery: the samples share received_time
    state.ingest_biometric(biometric("HEART_RATE", T0 + 2 * MIN_MS, 60, received_time=sync), NOW)
    state.ingest_biometric(biometric("HEART_RATE", T0 + MIN_MS, 60, received_time=sync), NOW)  # back
    state.ingest_biometric(biometric("HEART_RATE", T0, 60, unit="bpm"), NOW)
    q = state.days[D0].q
    assert (q[NON_MONOTONIC], q[UNIT_MISMATCH]) == (1, 1)
    assert consistency(state.days[D0]) == pytest.approx(1 - 2 / 3)


def test_a_later_delivery_of_older_samples_is_a_backfill_not_an_inconsistency():
    state = PatientState(PATIENT)
    live = [
        biometric("HEART_RATE", T0 + (60 + i) * MIN_MS, 60, received_time=T0 + 2 * HOUR_MS) for i in range(5)
    ]
    backfill = [
        biometric("HEART_RATE", T0 + i * MIN_MS, 60, received_time=T0 + 3 * HOUR_MS) for i in range(5)
    ]
    other_device = biometric(
        "HEART_RATE", T0 + 30 * MIN_MS, 60, device_id="dev-2", received_time=T0 + 2 * HOUR_MS
    )
    for e in [*live, other_device, *backfill]:
        assert state.ingest_biometric(e, NOW) is None
    assert state.days[D0].q[NON_MONOTONIC] == 0
    assert consistency(state.days[D0]) == 1.0
    reordered = PatientState(PATIENT)  # the same delivery, sent out of time order
    for e in [*live[::-1]]:
        reordered.ingest_biometric(e, NOW)
    assert reordered.days[D0].q[NON_MONOTONIC] == 4
    unstamped = PatientState(PATIENT)  # without received_time, arrival order is judged
    for i in (2, 1, 3):
        unstamped.ingest_biometric(biometric("HEART_RATE", T0 + i * MIN_MS, 60, received_time=None), NOW)
    assert unstamped.days[D0].q[NON_MONOTONIC] == 1


def test_full_good_day_meets_standards_and_missing_day_does_not():
    state = PatientState(PATIENT)
    heart_rate_day(state, 60)
    good = day_quality(state.days[D0], state.expected_metrics(D0))
    assert good == {
        "completeness": 1.0,
        "outlier_share": 0.0,
        "consistency": 1.0,
        "meets_quality_standards": True,
    }
    assert day_quality(None, state.expected_metrics(D0)) == {
        "completeness": 0.0,
        "outlier_share": 0.0,
        "consistency": 1.0,
        "meets_quality_standards": False,
    }


def test_missing_days_are_explicit_in_published_features():
    state = PatientState(PATIENT)
    state.ingest_biometric(biometric("HEART_RATE", T0, 60), NOW)
    state.ingest_biometric(biometric("HEART_RATE", T0 + 3 * DAY_MS + 2 * HOUR_MS, 60), NOW)
    out = state.drain()
    assert [f["missing"] for f in out] == [False, True, True]
    for f in out[1:]:
        assert f["completeness"] == 0.0 and f["meets_quality_standards"] is False
        assert f["heart_rate_mean"] is None and f["rolling_7d"] == {} and f["normalized"] == {}
    assert out[0]["completeness"] == pytest.approx(1 / 22)  # one hour of heart rate
