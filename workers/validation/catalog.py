"""Clinical and physiological reference tables used by validation, features and quality.

Each biometric metric has an expected unit, a hard physiological range (outside it the
sample is invalid and dead-lettered) and a typical range (outside it the sample is kept
but counted as an outlier for quality). ``hist`` = (low, bin width, bins) of the per-day
histogram used for the robust (median/MAD) z-score; None where the distribution is not
unimodal enough for it (steps are zero-inflated, sleep segments vary by design).
"""

from __future__ import annotations

from typing import NamedTuple

from schemas import assessments
from schemas.exceptions import AssessmentError
from schemas.metrics import METRIC_UNIT
from schemas.models import REPORTED_SYMPTOM_TYPES, Band, SleepStage, known_symbols


class MetricSpec(NamedTuple):
    unit: str
    hard_lo: float
    hard_hi: float
    typ_lo: float
    typ_hi: float
    hist: tuple[float, float, int] | None


def _spec(
    metric: str,
    hard_lo: float,
    hard_hi: float,
    typ_lo: float,
    typ_hi: float,
    hist: tuple[float, float, int] | None,
) -> MetricSpec:
    return MetricSpec(METRIC_UNIT[metric], hard_lo, hard_hi, typ_lo, typ_hi, hist)  # the contract's unit


METRICS: dict[str, MetricSpec] = {
    m: _spec(m, *ranges)
    for m, ranges in {
        "HEART_RATE": (25, 250, 35, 200, (25.0, 1.0, 226)),
        "RESTING_HEART_RATE": (25, 150, 35, 110, None),
        "HRV_RMSSD": (1, 300, 5, 200, (1.0, 1.0, 300)),
        "HRV_SDNN": (1, 400, 10, 250, (1.0, 2.0, 200)),
        # steps: value bound is the per-day bound; the per-minute rate is checked separately.
        "STEPS": (0, 60000, 0, 60000, None),
        "SPO2": (50, 100, 85, 100, (50.0, 0.5, 101)),
        "RESPIRATORY_RATE": (4, 60, 8, 30, (4.0, 0.5, 113)),
        "SLEEP_STAGE": (0, 86400, 0, 4 * 3600, None),
    }.items()
}
# Stored in window state (hour cells): a new metric goes at the end, none is ever reordered.
METRIC_INDEX: dict[str, int] = {m: i for i, m in enumerate(METRICS)}
METRIC_NAMES: tuple[str, ...] = tuple(METRICS)

STEPS_PER_MIN_HARD = 300.0  # above any human cadence: invalid
STEPS_PER_MIN_TYPICAL = 200.0  # sprint cadence: plausible but an outlier
STEPS_PER_DAY_MAX = 60000.0  # a day above this counts all its step samples as outliers

SLEEP_STAGES = frozenset(known_symbols(SleepStage))
ASLEEP_STAGES = ("LIGHT", "DEEP", "REM", "ASLEEP")

SYMPTOM_TYPES = frozenset(REPORTED_SYMPTOM_TYPES)
SEVERITY_MIN, SEVERITY_MAX = 0, 10

# instrument -> (items, item max, LOINC total code, position of PHQ-9 item 9 or None), from the
# scoring tables of schemas.assessments (PHQ9_ITEM9: 1 item, total 0-3, item 9 at position 0)
INSTRUMENTS: dict[str, tuple[int, int, str, int | None]] = {
    str(name): (spec.items, assessments.ITEM_MAX, spec.total_loinc, spec.item9_index)
    for name, spec in assessments.INSTRUMENTS.items()
}
BANDS = frozenset(known_symbols(Band))


def band_for(instrument: str, total: int) -> str:
    """Severity band of a PHQ-9 (0-27) or GAD-7 (0-21) total; UNKNOWN outside the range and for
    the unbanded PHQ9_ITEM9 screen."""
    try:
        return str(assessments.band_for(instrument, total))
    except AssessmentError:
        return "UNKNOWN"
