"""The promotion rule: each condition can hold the shadow back."""

from __future__ import annotations

import pytest

from workers.twin.promotion import PromotionRule, evaluate, sign_test
from workers.twin.shadow import PairedMetrics


def _patient(
    live_mae: float,
    shadow_mae: float,
    *,
    pairs: int = 30,
    live_cover: int = 24,
    shadow_cover: int = 24,
    phq9: tuple[float, float] = (2.0, 2.0),
) -> PairedMetrics:
    return PairedMetrics(
        pairs=pairs,
        live_abs=live_mae * pairs,
        shadow_abs=shadow_mae * pairs,
        intervals=pairs,
        live_covered=live_cover,
        shadow_covered=shadow_cover,
        phq9_pairs=2,
        phq9_live_abs=2 * phq9[0],
        phq9_shadow_abs=2 * phq9[1],
    )


def _cohort(n: int = 25, better: int = 20, gain: float = 0.10, **kw) -> list[PairedMetrics]:
    return [_patient(1.0, 1.0 - gain if i < better else 1.0 + gain / 4, **kw) for i in range(n)]


def _evaluate(per_patient, **rule) -> object:
    return evaluate(per_patient, live="live-id", shadow="shadow-id", rule=PromotionRule(**rule))


def test_sign_test_is_the_exact_binomial_tail():
    assert sign_test(15, 5) == pytest.approx(0.020695, abs=1e-6)
    assert sign_test(10, 10) == pytest.approx(0.588099, abs=1e-6)
    assert sign_test(3, 0) == 0.125


def test_a_clearly_better_shadow_on_enough_patients_is_promoted():
    report = _evaluate(_cohort())
    assert report.promote, report.reasons
    assert (report.patients, report.pairs) == (25, 750)
    assert report.gain == pytest.approx(1 - (20 * 0.9 + 5 * 1.025) / 25)
    assert (report.shadow_better_patients, report.live_better_patients) == (20, 5)
    assert report.p_value < 0.05 and report.to_dict()["promote"] is True


def test_too_few_patients_or_pairs_hold_it_back():
    report = _evaluate(_cohort(n=12, better=12))
    assert not report.promote
    assert any("12 patients" in r for r in report.reasons)
    assert any("paired forecasts (needs 500)" in r for r in report.reasons)
    # patients below the per-patient minimum do not count
    short = _evaluate(_cohort(pairs=10))
    assert short.patients == 0 and short.patients_shadowed == 25 and not short.promote


def test_a_gain_below_the_minimum_holds_it_back():
    report = _evaluate(_cohort(better=25, gain=0.01))
    assert not report.promote and any("gain 1.0%" in r for r in report.reasons)


def test_a_pooled_gain_carried_by_a_few_patients_fails_the_sign_test():
    cohort = [_patient(2.0, 1.0) for _ in range(6)] + [_patient(1.0, 1.02) for _ in range(19)]
    report = _evaluate(cohort)
    assert report.gain > 0.15 and report.p_value > 0.05
    assert not report.promote and any("sign test" in r for r in report.reasons)


def test_worse_calibrated_intervals_hold_it_back():
    # live covers 80%, shadow 70%: 10 points farther from the nominal 80%
    report = _evaluate(_cohort(shadow_cover=21))
    assert not report.promote and any("interval coverage" in r for r in report.reasons)
    # over-covering by as much as the live version under-covers is no worse
    assert _evaluate(_cohort(live_cover=21, shadow_cover=27)).promote


def test_a_worse_phq9_forecast_holds_it_back_once_there_are_enough_pairs():
    report = _evaluate(_cohort(phq9=(2.0, 2.5)))
    assert not report.promote and any("PHQ-9" in r for r in report.reasons)
    assert _evaluate(_cohort(phq9=(2.0, 2.5)), min_phq9_pairs=100).promote
