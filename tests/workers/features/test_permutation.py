import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.workers.features.factories import (
    DAY_MS,
    MIN_MS,
    NOW,
    PATIENT,
    T0,
    biometric,
    sleep,
    steps,
    symptom,
)
from workers.features.patient import PatientState

D0 = T0 // DAY_MS
SPAN = 3 * DAY_MS
# keys that legitimately depend on arrival order (publication bookkeeping). Quality does
# not: each event here is its own delivery (received_time = event_time), and monotonic time
# is judged within a delivery.
ORDER_DEPENDENT = {
    "revision",
    "late_events",
    "event_id",
    "received_time",
    "normalized",
}

offsets = st.integers(min_value=0, max_value=SPAN // MIN_MS - 1).map(lambda m: T0 + m * MIN_MS)
event = st.one_of(
    st.builds(lambda t, v: biometric("HEART_RATE", t, v), offsets, st.floats(30, 240)),
    st.builds(lambda t, v: biometric("HRV_RMSSD", t, v), offsets, st.floats(2, 250)),
    st.builds(lambda t, v: steps(t, v, 60), offsets, st.integers(0, 280)),
    st.builds(
        lambda t, s, d: sleep(t, s, d),
        offsets,
        st.sampled_from(["AWAKE", "LIGHT", "DEEP", "REM", "ASLEEP"]),
        st.integers(30, 7200),
    ),
    st.builds(
        lambda t, k, s: symptom(t, k, s),
        offsets,
        st.sampled_from(["ANXIETY", "FATIGUE", "PANIC"]),
        st.integers(0, 10),
    ),
)


def kind(e):
    return "SymptomReport" if "symptom_type" in e else "BiometricSample"


def final_features(events):
    state = PatientState(PATIENT)
    for e in events:
        assert state.ingest(kind(e), e, NOW) is None
    days = sorted(state.days)
    return {d: {k: v for k, v in state.features(d).items() if k not in ORDER_DEPENDENT} for d in days}


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=60, deadline=None)
@given(
    st.lists(event, min_size=1, max_size=120, unique_by=lambda e: e["event_id"]),
    st.randoms(use_true_random=False),
)
def test_any_permutation_gives_identical_daily_aggregates(events, rnd):
    shuffled = list(events)
    rnd.shuffle(shuffled)
    a = final_features(events)
    b = final_features(shuffled)
    assert a.keys() == b.keys()
    for day in a:
        assert same(a[day], b[day]), day


@settings(max_examples=30, deadline=None)
@given(
    st.lists(event, min_size=1, max_size=80, unique_by=lambda e: e["event_id"]),
    st.randoms(use_true_random=False),
)
def test_hourly_moments_are_permutation_invariant(events, rnd):
    shuffled = list(events)
    rnd.shuffle(shuffled)
    sa, sb = PatientState(PATIENT), PatientState(PATIENT)
    for e in events:
        sa.ingest(kind(e), e, NOW)
    for e in shuffled:
        sb.ingest(kind(e), e, NOW)
    for day, wa in sa.days.items():
        for metric in wa.series:
            ha, hb = wa.hourly(metric), sb.days[day].hourly(metric)
            assert ha.keys() == hb.keys()
            for h in ha:
                assert same(ha[h]._asdict(), hb[h]._asdict())
