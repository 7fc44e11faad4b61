"""Sustained biometric shifts: CUSUMs against the personal baseline, not single-day spikes."""

from __future__ import annotations

import random

from twin_factories import features

from workers.twin.shifts import BiometricShift
from workers.twin.state import SHIFT_KEY, apply_daily_features, new_twin

PID = "p_" + "12" * 16


def _run(days: list[tuple[int, float, float]], seed: int = 1):
    """Apply days of (day, resting HR offset, sleep offset); returns the alerts by day."""
    rng = random.Random(seed)
    state, raised = new_twin(PID), {}
    for day, rhr, sleep in days:
        rec = features(
            day,
            3.0,
            resting_heart_rate=62.0 + rhr + rng.gauss(0, 1.5),
            hrv_rmssd=45.0 + rng.gauss(0, 4),
            steps_total=8000.0 + rng.gauss(0, 1500),
            sleep_total_minutes=420.0 + sleep + rng.gauss(0, 40),
            heart_rate_mean=74.0 + rhr + rng.gauss(0, 2),
        )
        state, out = apply_daily_features(state, rec)
        raised[day] = [a for a in out.alerts if a["alert_type"] == "BIOMETRIC_ANOMALY"]
    return state, raised


def test_an_illness_like_spell_is_flagged_within_days_with_its_rule():
    calm = [(t, 0.0, 0.0) for t in range(60)]
    spell = [(t, 5.0, 15.0) for t in range(60, 68)]
    state, raised = _run(calm + spell)
    assert not any(raised[t] for t in range(60))
    hits = [
        t for t in range(60, 68) if any(a["evidence"].get("rule") == "SUSTAINED_SHIFT" for a in raised[t])
    ]
    assert hits and hits[0] <= 63
    ev = next(a for a in raised[hits[0]] if a["evidence"].get("rule") == "SUSTAINED_SHIFT")["evidence"]
    assert ev["trigger"] == "resting_heart_rate"
    assert float(ev["cusum_resting_heart_rate"]) >= float(ev["cusum_threshold"])
    assert SHIFT_KEY in state.alerts


def test_a_single_day_spike_is_not_a_sustained_shift():
    days = [(t, 0.0, 0.0) for t in range(60)] + [(60, 15.0, 0.0)] + [(t, 0.0, 0.0) for t in range(61, 70)]
    _, raised = _run(days)
    rules = [a["evidence"].get("rule") for t in range(60, 70) for a in raised[t]]
    assert "SUSTAINED_SHIFT" not in rules


def test_the_shift_clears_after_quiet_days_and_the_baseline_did_not_absorb_it():
    days = [(t, 0.0, 0.0) for t in range(60)] + [(t, 6.0, 0.0) for t in range(60, 70)]
    state, _ = _run(days)
    assert state.shift.active
    assert abs(state.anomaly.stats["resting_heart_rate"].mean - 62.0) < 1.5  # frozen while active
    state2, _ = _run(days + [(t, 0.0, 0.0) for t in range(70, 80)])
    assert not state2.shift.active
    assert SHIFT_KEY not in state2.alerts


def test_secondary_features_raise_a_shift_only_together():
    mon = BiometricShift()
    for day in range(10):
        assert not mon.update(day, {"hrv_rmssd": -2.5})  # one secondary feature alone
    assert mon.update(10, {"hrv_rmssd": -2.5, "steps_total": -3.0}) is False  # steps still building
    fired = [mon.update(d, {"hrv_rmssd": -2.5, "steps_total": -3.0}) for d in range(11, 15)]
    assert any(fired) and mon.trigger == "hrv_rmssd+steps_total"
