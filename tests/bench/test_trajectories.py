"""The second fidelity cohort (bench/_trajectories.py): deterministic, and shaped as described."""

from __future__ import annotations

import statistics

from bench import _trajectories as tr


def test_cohort_is_deterministic_per_seed():
    a = tr.generate_patient(3, seed=11, days=120)
    b = tr.generate_patient(3, seed=11, days=120)
    c = tr.generate_patient(3, seed=12, days=120)
    assert a.events == b.events and a.mood == b.mood
    assert a.patient_id != c.patient_id


def test_every_class_occurs_and_episodes_belong_to_classes_that_have_them():
    cohort = tr.generate_cohort(60, seed=11, days=365)
    assert {p.trajectory for p in cohort} == set(tr.CLASSES)
    for p in cohort:
        if p.trajectory in ("improving", "chronic"):
            assert p.episodes == []
        if p.trajectory in ("relapsing", "fluctuating"):
            assert p.episodes
        for ep in p.episodes:
            assert 0 <= ep.onset < ep.end < 365
            assert p.expected[ep.end] > p.expected[ep.onset - 1]


def test_compressive_raters_move_less_on_the_daily_scale():
    cohort = tr.generate_cohort(80, seed=11, days=200)

    def spread(p: tr.TrajectoryPatient) -> float:
        return statistics.pstdev(p.mood)

    compressive = [spread(p) for p in cohort if p.compressive]
    full = [spread(p) for p in cohort if not p.compressive]
    assert compressive and full
    assert statistics.median(compressive) < 0.7 * statistics.median(full)


def test_antidepressant_response_is_lagged():
    course = tr._Treatment(start=10, lag=21, tau=20.0, share=0.7)
    assert course.relief(10) == course.relief(30) == 0.0
    assert 0.0 < course.relief(40) < course.relief(80) < 0.7


def test_app_non_use_comes_in_runs_and_weekends_feel_better():
    cohort = tr.generate_cohort(60, seed=11, days=365)
    runs = []
    for p in cohort:
        length = 0
        for s in p.severity:
            if s is None:
                length += 1
            elif length:
                runs.append(length)
                length = 0
    assert statistics.fmean(runs) > 1.5  # bursts, not independent single days
    weekend = statistics.fmean(p.mood[t] - p.mood[t - 3] for p in cohort for t in range(5, 365, 7))
    assert weekend < 0
