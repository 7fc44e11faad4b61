"""Scoring helpers of the twin fidelity bench."""

from __future__ import annotations

import pytest

from bench._fidelity import ForecastScore, RecentMean, trend_phase


def test_a_last_value_of_zero_is_kept_and_scored():
    score = ForecastScore()
    score.add({"twin": 0.5, "persistence": 0.0, "mean_7d": 0.0}, 1.0)
    report = score.report()
    assert report["pairs"] == 1
    assert report["persistence_mae"] == 1.0
    assert report["improvement_vs_persistence"] == pytest.approx(0.5)


def test_recent_mean_covers_seven_calendar_days_and_skips_gaps():
    week = RecentMean()
    for day, value in [(0, 10.0), (1, None), (2, 0.0), (7, 2.0)]:
        week.add(day, value)
    assert week.mean() == pytest.approx(1.0)  # day 0 left the window on day 7
    week.add(20, None)
    assert week.mean() is None


def test_bias_is_split_by_phase_and_intervals_report_coverage():
    score = ForecastScore()
    score.add({"twin": 2.0, "persistence": 1.0, "mean_7d": 1.5}, 3.0, "worsening")
    score.add({"twin": 3.0, "persistence": 4.0, "mean_7d": 3.5}, 3.0, None)
    score.add_interval(1.0, 2.0, 1.5)
    score.add_interval(1.0, 2.0, 2.5)
    report = score.report()
    assert report["bias_worsening"] == {"pairs": 1, "twin": -1.0, "persistence": -2.0, "mean_7d": -1.5}
    assert report["interval"]["coverage"] == 0.5


def test_trend_phase_uses_the_noise_free_path():
    expected = [3.0] * 7 + [3.6, 4.0]
    assert trend_phase(expected, 7) == "worsening"
    assert trend_phase(expected, 6) is None
    assert trend_phase([5.0] * 7 + [4.0], 7) == "improving"
