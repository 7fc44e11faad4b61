"""When a shadow model version may replace the live one: the promotion rule, stated as code.

The rule is fleet-wide and takes patients as the units of evidence. A version is a property of
the deployment (every twin runs under it), so it is promoted for everyone or no one; choosing
per patient would pick noise, since with a few dozen paired days either version "wins" about
half the patients by chance. A patient's daily errors are autocorrelated (a bad week is bad for
both versions), so days are not independent and a test over pooled days would overstate the
evidence; patients are independent, so each patient with enough pairs casts one vote: did the
shadow have the lower mean absolute error on that patient's paired forecasts? The shadow is
promoted when all of these hold (defaults of :class:`PromotionRule`):

1. at least ``min_patients`` (20) patients each have ``min_pairs_per_patient`` (14) or more
   paired next-day severity forecasts, and they hold ``min_pairs`` (500) pairs in all;
2. over those patients' pairs, the shadow's MAE is at least ``min_gain`` (2%) below the live
   version's;
3. a one-sided exact sign test over those patients (shadow better vs worse, ties dropped)
   rejects "no better" at ``alpha`` (0.05);
4. the shadow's 80% interval is no worse calibrated: its coverage is no farther from the
   nominal 80% than the live version's by more than ``max_coverage_loss`` (2 points);
5. when there are at least ``min_phq9_pairs`` (20) paired PHQ-9 forecasts, the shadow's PHQ-9
   MAE is at most ``max_phq9_loss`` (5%) above the live version's.

Every number the decision used is in the :class:`PromotionReport`, with the reasons it failed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workers.twin.conformal import ALPHA
from workers.twin.shadow import PairedMetrics

NOMINAL_COVERAGE = 1.0 - ALPHA
"""The severity interval's nominal coverage (80%)."""


@dataclass(frozen=True, kw_only=True)
class PromotionRule:
    """Thresholds of the rule (see the module docstring)."""

    min_patients: int = 20
    min_pairs_per_patient: int = 14
    min_pairs: int = 500
    min_gain: float = 0.02
    alpha: float = 0.05
    max_coverage_loss: float = 0.02
    min_phq9_pairs: int = 20
    max_phq9_loss: float = 0.05


@dataclass
class PromotionReport:
    """The rule applied to one shadow: the evidence, the verdict and why."""

    live: str
    shadow: str
    patients_shadowed: int
    patients: int
    pairs: int
    live_mae: float | None
    shadow_mae: float | None
    gain: float | None
    shadow_better_patients: int
    live_better_patients: int
    p_value: float | None
    live_coverage: float | None
    shadow_coverage: float | None
    phq9_pairs: int
    phq9_live_mae: float | None
    phq9_shadow_mae: float | None
    promote: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def sign_test(better: int, worse: int) -> float:
    """One-sided exact sign test: P(X >= ``better``) for X ~ Binomial(better + worse, 1/2).

    >>> round(sign_test(15, 5), 4)
    0.0207
    >>> sign_test(0, 0)
    1.0
    """
    n = better + worse
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(better, n + 1)) / 2**n


def evaluate(
    per_patient: Iterable[PairedMetrics],
    *,
    live: str,
    shadow: str,
    rule: PromotionRule | None = None,
) -> PromotionReport:
    """Apply ``rule`` to the shadow's paired metrics, one :class:`PairedMetrics` per patient."""
    rule = rule or PromotionRule()
    shadowed = list(per_patient)
    eligible = [p for p in shadowed if p.pairs >= rule.min_pairs_per_patient]
    total = PairedMetrics()
    for p in eligible:
        total.add(p)
    better = sum(1 for p in eligible if p.shadow_abs < p.live_abs)
    worse = sum(1 for p in eligible if p.live_abs < p.shadow_abs)
    p_value = sign_test(better, worse) if eligible else None
    live_mae, shadow_mae = total.live_mae, total.shadow_mae
    gain = 1.0 - shadow_mae / live_mae if live_mae and shadow_mae is not None else None
    reasons: list[str] = []
    if len(eligible) < rule.min_patients:
        reasons.append(
            f"{len(eligible)} patients with >= {rule.min_pairs_per_patient} paired forecasts "
            f"(needs {rule.min_patients})"
        )
    if total.pairs < rule.min_pairs:
        reasons.append(f"{total.pairs} paired forecasts (needs {rule.min_pairs})")
    if gain is None or gain < rule.min_gain:
        shown = "-" if gain is None else f"{gain:.1%}"
        reasons.append(f"shadow MAE gain {shown} (needs >= {rule.min_gain:.0%})")
    if p_value is None or p_value >= rule.alpha:
        shown = "-" if p_value is None else f"{p_value:.3g}"
        reasons.append(
            f"sign test over patients: shadow better on {better}, worse on {worse}, "
            f"p = {shown} (needs < {rule.alpha})"
        )
    lc, sc = total.live_coverage, total.shadow_coverage
    if lc is not None and sc is not None:
        loss = abs(sc - NOMINAL_COVERAGE) - abs(lc - NOMINAL_COVERAGE)
        if loss > rule.max_coverage_loss:
            reasons.append(
                f"interval coverage {sc:.1%} against {lc:.1%} live: {loss:.1%} farther from "
                f"{NOMINAL_COVERAGE:.0%} (allowed {rule.max_coverage_loss:.0%})"
            )
    elif total.pairs:
        reasons.append("no paired interval scores")
    pl, ps = total.phq9_live_mae, total.phq9_shadow_mae
    enough_phq9 = total.phq9_pairs >= rule.min_phq9_pairs and pl is not None and ps is not None
    if enough_phq9 and ps > pl * (1 + rule.max_phq9_loss):  # type: ignore[operator]
        reasons.append(
            f"PHQ-9 forecast MAE {ps:.2f} against {pl:.2f} live (allowed {rule.max_phq9_loss:.0%} above)"
        )
    return PromotionReport(
        live=live,
        shadow=shadow,
        patients_shadowed=len(shadowed),
        patients=len(eligible),
        pairs=total.pairs,
        live_mae=live_mae,
        shadow_mae=shadow_mae,
        gain=gain,
        shadow_better_patients=better,
        live_better_patients=worse,
        p_value=p_value,
        live_coverage=lc,
        shadow_coverage=sc,
        phq9_pairs=total.phq9_pairs,
        phq9_live_mae=pl,
        phq9_shadow_mae=ps,
        promote=not reasons,
        reasons=reasons,
    )
