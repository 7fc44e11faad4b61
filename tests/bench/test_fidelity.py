"""Scoring helpers of the twin fidelity bench."""

from __future__ import annotations

import pytest

from bench._fidelity import (
    ForecastScore,
    RecentMean,
    from_histogram,
    gain_interval,
    histogram,
    median_interval,
    rate_interval,
    share_interval,
    trend_phase,
)
from bench.bench_twin_fidelity import pooled


def test_a_last_value_of_zero_is_kept_and_scored():
    score = ForecastScore()
    score.add({"twin": 0.5, "persistence": 0.0, "mean_7d": 0.0}, 1.0)
    report = score.report()
    assert report["pairs"] == 1
    assert report["persistence_mae"] == 1.0
    assert report["improvement_vs_persistence"] == pytest.approx(0.5)


def test_the_oracle_is_the_ceiling_and_the_twin_gets_its_share_of_the_gain():
    score = ForecastScore()
    score.add({"twin": 1.5, "persistence": 0.0, "mean_7d": 1.0, "oracle": 2.5}, 3.0, "worsening")
    report = score.report()
    # MAE: mean_7d 2.0 (the best baseline), twin 1.5, oracle 0.5
    assert report["oracle"]["mae"] == 0.5
    assert report["oracle"]["improvement_vs_mean_7d"] == pytest.approx(0.75)
    assert report["oracle"]["twin_share_of_achievable_gain"] == pytest.approx(1 / 3)
    assert report["bias_worsening"]["oracle"] == -0.5


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


def test_baseline_detectors_alarm_on_rising_edges_and_are_scored_like_the_twin():
    from bench._fidelity import BaselineDetectors, EpisodeScore

    det = BaselineDetectors()
    for day in range(40):
        det.daily(day, 2.0 if day < 30 else 5.0)
        if day in (10, 24, 31, 38):
            det.phq9(day, {10: 4, 24: 12, 31: 14, 38: 8}[day])
    assert det.alarms["persistence"] == [24]
    assert det.alarms["mean_7d"] == [33]  # the week mean 3.7 is 1.7 above 2.0

    class Ep:
        onset, end = 28, 45

    score = EpisodeScore()
    score.add([Ep()], det.alarms["mean_7d"])
    score.add([Ep()], det.alarms["persistence"])
    report = score.report(years=2.0)
    assert (report["episodes"], report["detected"], report["median_delay_days"]) == (2, 1, 5)
    assert report["false_alarms_per_patient_year"] == 0.5  # day 24: before the onset


def test_episodes_are_counted_by_whether_a_phq9_of_10_was_seen_in_them():
    from bench._fidelity import DetectionScore

    class Ep:
        def __init__(self, onset: int, end: int) -> None:
            self.onset, self.end = onset, end

    score = DetectionScore()
    episodes = [Ep(10, 30), Ep(60, 80), Ep(100, 120)]
    # PHQ-9 >= 10 seen in the first two episodes; an alert only in the first
    score.add(episodes, [("SEVERITY_CUSUM", 15)], [], phq10_days=[12, 70])
    report = score.report(years=1.0)
    assert report["episodes_with_phq9_ge_10"] == 2
    assert report["episodes_with_phq9_ge_10_and_alert"] == 1


def test_delay_is_also_counted_from_the_day_the_noise_free_phq9_reaches_10():
    from bench._cohort import Episode, first_day_at_least
    from bench._fidelity import DetectionScore, EpisodeScore

    course = [2.0] * 10 + [2.0 + 0.125 * t for t in range(20)] + [4.5] * 10  # 10 reached on day 26
    reaches = Episode(10, 35, 2.0, None)
    reaches.phq9_10_day = first_day_at_least([2.5 * c for c in course], reaches, 10.0)
    assert reaches.phq9_10_day == 26
    stays_low = Episode(50, 60, 1.0, None)
    assert first_day_at_least([1.0] * 70, stays_low, 10.0) is None

    score = EpisodeScore()
    score.add([reaches], [29])
    score.add([Episode(10, 35, 2.0, None, phq9_10_day=26)], [20])  # before the crossing: 0
    score.add([stays_low], [55])
    report = score.report(years=3.0)
    assert (report["episodes_reaching_phq9_10"], report["detected_of_those"]) == (2, 2)
    assert report["median_delay_from_phq9_10_days"] == 1.5  # delays 3 and 0
    assert report["median_delay_days"] == 10  # from the onsets: 19, 10, 5

    twin = DetectionScore()
    twin.add([reaches, stays_low], [("SEVERITY_CUSUM", 29)], [])
    assert twin.report(years=1.0)["median_delay_from_phq9_10_days"] == 3


def test_share_interval_is_wilsons_and_stays_inside_zero_and_one():
    # 116 of 162 episodes: 71.6%, Wilson 95% interval 64.2-78.0%
    lo, hi = share_interval(116, 162)
    assert lo == pytest.approx(0.6422, abs=1e-4)
    assert hi == pytest.approx(0.7799, abs=1e-4)
    assert share_interval(0, 10)[0] == pytest.approx(0.0)
    assert share_interval(10, 10)[1] == 1.0
    assert share_interval(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)
    assert share_interval(0, 0) is None


@pytest.mark.parametrize(
    ("count", "lower", "upper"),
    # exact (chi-square) 95% limits of a Poisson count
    [(5, 1.6235, 11.6683), (10, 4.7954, 18.3904), (66, 51.0444, 83.9682), (157, 133.4021, 183.5694)],
)
def test_rate_interval_is_within_one_percent_of_the_exact_poisson_limits(count, lower, upper):
    lo, hi = rate_interval(count, 2.0)
    assert lo == pytest.approx(lower / 2.0, rel=0.01)
    assert hi == pytest.approx(upper / 2.0, rel=0.01)


def test_rate_interval_of_no_events_starts_at_zero():
    lo, hi = rate_interval(0, 100.0)
    assert lo == 0.0
    assert hi == pytest.approx(3.689 / 100.0, rel=0.01)
    assert rate_interval(3, 0.0) is None


def _head(seed, episodes, detected, false, years, informed):
    return {
        "seed": seed,
        "episodes": episodes,
        "detected": detected,
        "false_alarms": false,
        "patient_years": years,
        "delays_from_phq9_10_days": histogram([seed] * detected),
        "informed_detector": {
            "detected": informed[0],
            "false_alarms": informed[1],
            "delays_from_phq9_10_days": histogram([1] * informed[0]),
        },
    }


def test_pooled_sums_each_detector_over_the_seeds():
    by_seed = {
        "7": {"cohort": _head(7, 100, 90, 20, 100.0, (95, 10))},
        "20": {"cohort": _head(20, 50, 50, 40, 100.0, (49, 30))},
    }
    cohort = pooled(by_seed)["cohort"]
    assert cohort["seeds"] == [7, 20]
    assert cohort["patient_years"] == 200.0
    assert cohort["twin"]["detected"] == 140
    assert cohort["twin"]["detected_share"] == pytest.approx(140 / 150)
    assert cohort["twin"]["false_alarms_per_patient_year"] == pytest.approx(0.3)
    lo, hi = cohort["twin"]["false_alarms_per_patient_year_ci95"]
    assert lo < 0.3 < hi
    assert cohort["informed"]["episodes"] == 150
    assert cohort["informed"]["detected"] == 144
    assert cohort["informed"]["false_alarms"] == 40
    assert cohort["informed"]["detected_share_ci95"] == share_interval(144, 150)
    # delays: 90 of 7 days and 50 of 20 days pooled
    assert cohort["twin"]["median_delay_from_phq9_10_days"] == 7
    assert cohort["twin"]["median_delay_from_phq9_10_days_ci95"] == (7, 7)
    assert cohort["informed"]["median_delay_from_phq9_10_days"] == 1


def test_median_interval_brackets_the_median_by_order_statistics():
    values = list(range(1, 101))  # median 50.5
    lo, hi = median_interval(values)
    assert (lo, hi) == (40, 61)
    assert median_interval([3, 1, 2, 5, 4, 6])[0] <= 3
    assert median_interval([1, 2, 3]) is None


def test_histogram_round_trips_in_ascending_order():
    counts = histogram([10, 2, 2, 7, 10, 10])
    assert counts == {"2": 2, "7": 1, "10": 3}
    assert list(counts) == ["2", "7", "10"]
    assert from_histogram(counts) == [2, 2, 7, 10, 10, 10]


def test_gain_interval_resamples_patients_and_brackets_the_pooled_gain():
    # 40 patients: the twin's error sum is 90% of the baseline's, give or take per patient
    errors = {f"p{i}": (9.0 + (i % 5 - 2) * 0.5, 10.0) for i in range(40)}
    lo, hi = gain_interval(errors)
    assert lo < 0.1 < hi
    assert hi - lo < 0.05
    assert gain_interval(errors) == (lo, hi)  # deterministic
    assert gain_interval({"p0": (1.0, 2.0)}) is None


def test_forecast_score_reports_patient_level_intervals_of_its_gains():
    score = ForecastScore()
    for i in range(30):
        score.add({"twin": 1.0, "persistence": 0.0, "mean_7d": 0.5}, 1.0 + (i % 3) * 0.1, patient=f"p{i}")
    report = score.report()
    lo, hi = report["improvement_vs_persistence_ci95"]
    assert lo <= report["improvement_vs_persistence"] <= hi
    assert "improvement_vs_mean_7d_ci95" in report
    assert "improvement_vs_mean_7d_ci95" not in ForecastScore().report()
