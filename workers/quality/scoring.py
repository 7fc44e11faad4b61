"""Data-quality scores of one patient-day.

* outlier share = (samples outside the typical range + in-range samples with a robust
  z-score |0.6745 (x - median) / MAD| > 3.5) / accepted samples. Median and MAD come from
  the day's per-metric value histogram (bin width = resolution, MAD floored at one bin),
  so they are exact under any arrival order; needs >= 10 samples of the metric. A day
  whose step total exceeds 60,000 counts all its step samples as outliers.
* consistency = 1 - (unit mismatches + non-monotonic device samples + duplicates) /
  (accepted + unit mismatches + duplicates); 1.0 when nothing was seen. Monotonic time is
  judged the way a device sends its data: within one delivery (samples of a device
  stream sharing ``received_time``) timestamps must not go back; a later delivery of
  older samples (a backfill, a late sync) is normal and not counted.
* completeness = mean over the expected metrics (those the patient's devices produced in
  the 7 days ending on the day, see ``PatientState.expected_metrics``) of:

  ==================  ===========================================================
  HEART_RATE          wear = hours worn / 22, each UTC hour scored min(1, samples /
                      the day's own cadence); cadence = median samples per hour
                      with data
  STEPS               wear (when heart rate is expected) if any sample, else 0: the
                      step total misses the hours off the wrist, and step series
                      cannot show wear themselves (devices omit idle intervals)
  SLEEP_STAGE         >= 240 minutes recorded (asleep + awake) for the night
  other metrics       >= 1 sample (RHR, HRV: daily values; SpO2, respiratory rate:
                      nightly or occasional spot values)
  ==================  ===========================================================

  Heart rate is judged against the device's own sampling, not a fixed rate: devices
  differ by an order of magnitude (Fitbit intraday: one value a minute or finer; Apple
  Watch background: one every ~5 minutes, irregular; the simulator: every 5 minutes).
  22 of 24 hours leave room for charging. A device gap (hours or days without the
  device) lowers the score; a whole day without it scores 0 for every expected metric.
  With no expected metrics (reports only) a day with data is complete. A missing day
  scores completeness 0, outlier share 0, consistency 1.
* meets_quality_standards = outlier_share < 0.10 and consistency > 0.8 and
  completeness > 0.9.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

from workers.features.day import (
    ACCEPTED,
    BOUND_OUTLIERS,
    DUPLICATES,
    NON_MONOTONIC,
    UNIT_MISMATCH,
    DayWindow,
)
from workers.features.moments import SLOT
from workers.validation.catalog import METRICS, STEPS_PER_DAY_MAX

ROBUST_Z = 3.5
ROBUST_MIN_SAMPLES = 10
MAX_OUTLIER_SHARE = 0.10
MIN_CONSISTENCY = 0.8
MIN_COMPLETENESS = 0.9
FULL_WEAR_HOURS = 22
SLEEP_EXPECTED_MINUTES = 240.0


def robust_outliers(hist: array[int] | list[int], width: float) -> int:
    """Samples whose modified z-score (median/MAD over the histogram) exceeds 3.5."""
    n = sum(hist)
    if n < ROBUST_MIN_SAMPLES:
        return 0
    half = (n + 1) // 2
    cum = 0
    med = 0
    for i, c in enumerate(hist):
        cum += c
        if cum >= half:
            med = i
            break
    by_distance: dict[int, int] = {}
    for i, c in enumerate(hist):
        if c:
            k = abs(i - med)
            by_distance[k] = by_distance.get(k, 0) + c
    cum = 0
    mad_bins = 0
    for k in sorted(by_distance):
        cum += by_distance[k]
        if cum >= half:
            mad_bins = k
            break
    mad = max(mad_bins, 1) * width
    limit = ROBUST_Z * mad / 0.6745
    return sum(c for i, c in enumerate(hist) if c and abs(i - med) * width > limit)


def outlier_share(window: DayWindow) -> float:
    accepted = window.q[ACCEPTED]
    if accepted == 0:
        return 0.0
    outliers = window.q[BOUND_OUTLIERS]
    for metric, hist in window.hist.items():
        spec = METRICS[metric].hist
        assert spec is not None
        outliers += robust_outliers(hist, spec[1])
    steps = window.moments("STEPS")
    if steps is not None and steps.total > STEPS_PER_DAY_MAX:
        outliers += steps.n
    return min(1.0, outliers / accepted)


def consistency(window: DayWindow) -> float:
    q = window.q
    seen = q[ACCEPTED] + q[UNIT_MISMATCH] + q[DUPLICATES]
    if seen == 0:
        return 1.0
    bad = q[UNIT_MISMATCH] + q[NON_MONOTONIC] + q[DUPLICATES]
    return max(0.0, 1.0 - bad / seen)


def wear_hours(series: array[float] | None) -> float:
    """Hours of a day's hourly series with data, each scored against the day's cadence."""
    if not series:
        return 0.0
    counts = sorted(series[1::SLOT])
    mid = len(counts) // 2
    cadence = counts[mid] if len(counts) % 2 else (counts[mid - 1] + counts[mid]) / 2
    return sum(min(1.0, c / cadence) for c in counts)


def completeness(window: DayWindow, expected: Iterable[str]) -> float:
    expected = sorted(expected)
    wear = 1.0
    if "HEART_RATE" in expected:
        wear = min(1.0, wear_hours(window.series.get("HEART_RATE")) / FULL_WEAR_HOURS)
    scores = []
    for metric in expected:
        if metric == "HEART_RATE":
            scores.append(wear)
        elif metric == "STEPS":  # a daily total: hours off the wrist are steps not counted
            scores.append(wear if metric in window.series else 0.0)
        elif metric == "SLEEP_STAGE":
            sleep = window.sleep_seconds()
            minutes = sum(sleep.values()) / 60.0 if sleep else 0.0
            scores.append(min(1.0, minutes / SLEEP_EXPECTED_MINUTES))
        else:
            scores.append(1.0 if metric in window.series else 0.0)
    if not scores:
        return 1.0 if window.has_data() else 0.0
    return sum(scores) / len(scores)


def meets_quality_standards(outliers: float, consistent: float, complete: float) -> bool:
    if outliers >= MAX_OUTLIER_SHARE:
        return False
    return consistent > MIN_CONSISTENCY and complete > MIN_COMPLETENESS


def day_quality(window: DayWindow | None, expected: Iterable[str]) -> dict[str, Any]:
    """The four quality keys of PatientDailyFeatures for one day."""
    if window is None or not window.has_data():
        cons = 1.0 if window is None else consistency(window)
        return {
            "completeness": 0.0,
            "outlier_share": 0.0,
            "consistency": cons,
            "meets_quality_standards": False,
        }
    out = outlier_share(window)
    cons = consistency(window)
    comp = completeness(window, expected)
    return {
        "completeness": comp,
        "outlier_share": out,
        "consistency": cons,
        "meets_quality_standards": meets_quality_standards(out, cons, comp),
    }
