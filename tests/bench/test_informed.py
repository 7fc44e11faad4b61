"""The fidelity bench's parameter-informed reference forecasters (bench/_informed.py)."""

from __future__ import annotations

import random
import statistics

import pytest

from bench import _cohort as co
from bench import _trajectories as tr
from bench._informed import (
    ReportModel,
    course_known_forecasts,
    informed_alarms,
    informed_forecasts,
    knowledge_alarms,
)

FULL_SCALE = ReportModel(
    gain=1.0, anchor=4.0, offset=0.0, report_sd=0.0, phi=0.7, shock_sd=1.5, dow_amplitude=0.0
)


def test_the_scale_is_inverted_inside_its_range():
    model = ReportModel(
        gain=0.5, anchor=4.0, offset=0.6, report_sd=0.8, phi=0.5, shock_sd=1.0, dow_amplitude=1.0
    )
    for phq in (3.0, 10.8, 20.0):
        assert model.to_phq(model.on_scale(phq)) == pytest.approx(phq)
    # a compressive rater's report says more PHQ-9 points per report point
    assert model.report_variance(1) == pytest.approx((2.7 / 0.5) ** 2 * (0.64 + 1 / 12))
    assert model.report_variance(2) == pytest.approx(model.report_variance(1) / 2)


def test_knowing_the_course_the_filter_recovers_the_daily_fluctuation():
    # nearly noise-free reports: the filter reads yesterday's AR state off the report, so its
    # forecast is the course plus phi times that state (what the oracle forecasts)
    rng = random.Random(5)
    course = [10.0 + 0.05 * t for t in range(60)]
    ar, truth, reports = 0.0, [], []
    for level in course:
        ar = FULL_SCALE.phi * ar + rng.gauss(0.0, FULL_SCALE.shock_sd)
        truth.append(ar)
        reports.append(FULL_SCALE.on_scale(level + ar))
    out = course_known_forecasts(FULL_SCALE, reports, [1_000_000] * 60, course)
    assert out[0] is None
    for t in range(1, 60):
        expected = FULL_SCALE.on_scale(course[t] + FULL_SCALE.phi * truth[t - 1])
        assert out[t] == pytest.approx(expected, abs=1e-3)


def test_the_informed_filter_settles_on_a_steady_course_and_skips_missing_days():
    reports: list[float | None] = [5.0 if t % 3 else None for t in range(90)]
    out = informed_forecasts(FULL_SCALE, reports, [0 if r is None else 1 for r in reports], [0.0] * 90)
    assert out[0] is None and len(out) == 90
    assert out[-1] == pytest.approx(5.0, abs=1e-6)


def test_the_informed_filter_adds_the_known_day_of_week_effect():
    model = ReportModel(
        gain=1.0, anchor=4.0, offset=0.0, report_sd=0.5, phi=0.5, shock_sd=1.0, dow_amplitude=1.0
    )
    pattern = [tr._day_of_week(t) for t in range(120)]
    level = 13.5
    reports = [model.on_scale(level + pattern[t]) for t in range(120)]
    out = informed_forecasts(model, reports, [1] * 120, pattern)
    # Saturday (-1.0 PHQ-9 points) forecast below Tuesday's by 1.0 / 2.7 report points
    saturday, tuesday = out[117], out[113]
    assert pattern[117] == -1.0 and pattern[113] == 0.0
    assert tuesday - saturday == pytest.approx(1.0 / 2.7, abs=0.02)


@pytest.mark.parametrize("generate", [tr.generate_cohort, co.generate_cohort], ids=["trajectories", "cohort"])
def test_on_a_generated_cohort_the_references_are_ordered_oracle_course_known_informed(generate):
    cohort = generate(30, seed=11, days=200)
    errors: dict[str, list[float]] = {"oracle": [], "course_known": [], "informed": []}
    for p in cohort:
        for t in range(15, 200):
            y = p.severity[t]
            if y is None or p.references["informed"][t] is None:
                continue
            errors["oracle"].append(abs(p.oracle[t] - y))
            for name in ("course_known", "informed"):
                errors[name].append(abs(p.references[name][t] - y))
    mae = {name: statistics.fmean(e) for name, e in errors.items()}
    assert mae["oracle"] < mae["course_known"] < mae["informed"]


def test_the_informed_detector_alarms_once_on_a_rise_over_the_calm_course_and_not_before():
    model = ReportModel(
        gain=1.0, anchor=4.0, offset=0.0, report_sd=0.5, phi=0.5, shock_sd=1.0, dow_amplitude=0.0
    )
    rng = random.Random(3)
    calm = [8.0] * 120
    rise = [0.0] * 60 + [min(t, 5) * 2.0 for t in range(1, 31)] + [0.0] * 30
    ar, reports = 0.0, []
    for t in range(120):
        ar = model.phi * ar + rng.gauss(0.0, model.shock_sd)
        reports.append(model.on_scale(calm[t] + rise[t] + ar))
    alarms = informed_alarms(model, reports, [1] * 120, calm)
    assert len(alarms) == 1
    assert 60 <= alarms[0] <= 66  # a 10-point rise over five days is seen within days
    assert informed_alarms(model, reports[:60], [1] * 60, calm[:60]) == []


def _steady_then_rise(
    model: ReportModel, rise: float, start: int, days: int, seed: int
) -> list[float | None]:
    """Reports of a course at 6 PHQ-9 points with an AR(1) fluctuation, ``rise`` points higher
    from day ``start`` on; every fifth day unreported."""
    rng = random.Random(seed)
    ar, out = 0.0, []
    for t in range(days):
        ar = model.phi * ar + rng.gauss(0.0, model.shock_sd)
        level = 6.0 + (rise if t >= start else 0.0)
        out.append(None if t % 5 == 4 else model.on_scale(level + ar) + rng.gauss(0.0, model.report_sd))
    return out


def test_estimating_the_baseline_the_detector_alarms_in_a_rise_and_not_before():
    model = ReportModel(
        gain=1.0, anchor=4.0, offset=0.0, report_sd=0.5, phi=0.5, shock_sd=1.0, dow_amplitude=0.0
    )
    reports = _steady_then_rise(model, rise=6.0, start=100, days=130, seed=3)
    counts = [0 if r is None else 1 for r in reports]
    alarms = informed_alarms(model, reports, counts, None)
    assert alarms and all(100 <= day < 115 for day in alarms)
    # the same series against the known course alarms in the rise too
    known = informed_alarms(model, reports, counts, [6.0] * 130)
    assert known and min(known) >= 100


def test_knowing_a_compressive_raters_scale_gain_reveals_a_rise_the_population_model_misses():
    model = ReportModel(
        gain=0.4, anchor=4.0, offset=0.0, report_sd=0.3, phi=0.5, shock_sd=1.0, dow_amplitude=0.0
    )
    reports = _steady_then_rise(model, rise=7.0, start=100, days=125, seed=8)
    counts = [0 if r is None else 1 for r in reports]
    scale_known = knowledge_alarms("scale_known", model, reports, counts)
    population = knowledge_alarms("population", model, reports, counts)
    assert [day for day in scale_known if day >= 100] and not [d for d in scale_known if d < 100]
    assert not population
