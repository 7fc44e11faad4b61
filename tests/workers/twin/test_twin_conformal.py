"""Online conformal intervals: warm-up, calibrated coverage, adaptation to a noise change."""

from __future__ import annotations

import random

from twin_factories import features

from workers.twin.conformal import MIN_SCORES, ConformalInterval
from workers.twin.state import apply_daily_features, new_twin, summary


def _stream(ci: ConformalInterval, rng: random.Random, n: int, sd: float) -> float:
    inside = 0
    for _ in range(n):
        iv = ci.interval(5.0, 0.0, 10.0)
        y = 5.0 + rng.gauss(0, sd)
        inside += iv is not None and iv[0] <= y <= iv[1]
        ci.update(y, 5.0, iv)
    return inside / n


def test_no_interval_before_min_scores():
    ci = ConformalInterval()
    for k in range(MIN_SCORES - 1):
        assert ci.interval(3.0, 0.0, 10.0) is None
        ci.update(3.0 + (k % 3) * 0.1, 3.0, None)
    ci.update(3.2, 3.0, None)
    assert ci.interval(3.0, 0.0, 10.0) is not None


def test_coverage_is_near_80_percent_on_stationary_noise():
    rng = random.Random(11)
    ci = ConformalInterval()
    _stream(ci, rng, 100, 1.0)
    assert 0.75 <= _stream(ci, rng, 2000, 1.0) <= 0.85


def test_coverage_recovers_after_the_noise_doubles():
    rng = random.Random(12)
    ci = ConformalInterval()
    _stream(ci, rng, 300, 0.5)
    _stream(ci, rng, 150, 1.0)  # the window turns over
    assert 0.72 <= _stream(ci, rng, 1000, 1.0) <= 0.88


def test_intervals_reach_the_twin_summary_and_are_scored():
    rng = random.Random(13)
    state = new_twin("p_" + "34" * 16)
    for t in range(60):
        state, _ = apply_daily_features(state, features(t, 3.0 + rng.gauss(0, 1.0)))
    doc = summary(state)
    lo, hi = doc["forecast_severity_interval_80"]
    assert 0.0 <= lo < state.forecast_severity < hi <= 10.0
    assert doc["forecast_interval_coverage"] is not None
