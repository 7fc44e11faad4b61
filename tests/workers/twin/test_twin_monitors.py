"""Monitors: robust anomaly z-scores, deterioration flag, co-moments, forecasters."""

from __future__ import annotations

import random

from workers.twin.deterioration import DeteriorationMonitor
from workers.twin.forecast import ScoreForecaster
from workers.twin.monitors import BiometricAnomaly, CoMoment


def test_anomaly_scores_a_fever_day_high_and_normal_days_low():
    rng = random.Random(3)
    det = BiometricAnomaly()
    normal = []
    for _ in range(60):
        day = {"resting_heart_rate": rng.gauss(60, 2), "hrv_rmssd": rng.gauss(45, 4)}
        score, _, _ = det.score(day, {})
        normal.append(score)
        det.learn(day)
    fever, top, personal = det.score({"resting_heart_rate": 78.0, "hrv_rmssd": 28.0}, {})
    assert personal and fever is not None and fever > 4
    assert top in {"resting_heart_rate", "hrv_rmssd"}
    assert sorted(s for s in normal[20:] if s is not None)[-1] < 3.5


def test_deterioration_fires_on_a_sustained_rise_and_not_on_noise():
    rng = random.Random(4)
    mon = DeteriorationMonitor()
    flags = []
    for t in range(120):
        level = 3.0 + (3.0 if t >= 80 else 0.0)
        _, active = mon.update(level + rng.gauss(0, 0.8))
        flags.append(active)
    assert not any(flags[:80])
    assert any(flags[80:95])


def test_comoment_matches_pearson():
    xs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]
    ys = [2 * x + (1 if i % 2 else -1) for i, x in enumerate(xs)]
    cm = CoMoment()
    for x, y in zip(xs, ys, strict=True):
        cm.update(x, y)
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    vx = sum((x - mx) ** 2 for x in xs)
    vy = sum((y - my) ** 2 for y in ys)
    assert abs(cm.corr - cov / (vx * vy) ** 0.5) < 1e-12


def test_phq9_forecaster_scores_before_learning_and_beats_persistence_on_a_trend():
    f = ScoreForecaster()
    for k in range(10):
        level = 2.0 + 0.5 * k
        f.observe(2.5 * level, level)
    assert f.model.n == 9 and f.persistence.n == 9
    assert f.model.mae is not None and f.persistence.mae is not None
    assert f.model.mae < f.persistence.mae


def test_phq9_forecaster_calibrates_a_compressive_rater_from_paired_days():
    rng = random.Random(3)
    f = ScoreForecaster()
    for _ in range(26):  # a year of biweekly PHQ-9 from a rater using a narrow band of 0-10
        level = 2.0 + rng.uniform(0, 1.5)
        f.observe(round(5.0 * level + rng.gauss(0, 1.5)), level)
    assert abs(f.predict(3.0) - 15.0) < 1.5  # the population line would say 7.5
    assert abs(ScoreForecaster().predict(3.0) - 7.5) < 1e-9
