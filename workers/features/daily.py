"""Daily feature values from a :class:`DayWindow`, 7-day rolling means, online z-scores.

Conventions: ``*_std`` is the sample standard deviation (None below 2 samples);
resting HR / HRV / SpO2 / respiratory rate are the means of the day's samples; sleep
minutes are for the night that ends on the date; ``sleep_total_minutes`` counts LIGHT,
DEEP, REM and unstaged ASLEEP; ``sleep_efficiency`` = asleep / (asleep + awake);
``symptom_severity_mean`` is the mean over all of the day's reports.
"""

from __future__ import annotations

import math
from typing import Any

from schemas.features import DAILY_MEASURES, MODEL_FEATURES, ROLLING_FEATURES
from workers.features.day import DayWindow

NULL_FEATURES: dict[str, Any] = dict.fromkeys(DAILY_MEASURES)
_MEANS = (
    ("RESTING_HEART_RATE", "resting_heart_rate"),
    ("HRV_RMSSD", "hrv_rmssd"),
    ("HRV_SDNN", "hrv_sdnn"),
    ("SPO2", "spo2_mean"),
    ("RESPIRATORY_RATE", "respiratory_rate_mean"),
)


def base_features(window: DayWindow | None) -> dict[str, Any] | None:
    """Feature values of one day (None when the day has no accepted data)."""
    if window is None or not window.has_data():
        return None
    out: dict[str, Any] = dict(NULL_FEATURES)
    hr = window.moments("HEART_RATE")
    if hr is not None:
        out["heart_rate_mean"] = hr.mean
        out["heart_rate_min"] = hr.min
        out["heart_rate_max"] = hr.max
        out["heart_rate_std"] = hr.std
    for metric, key in _MEANS:
        m = window.moments(metric)
        if m is not None:
            out[key] = m.mean
    steps = window.moments("STEPS")
    if steps is not None:
        out["steps_total"] = steps.total
    sleep = window.sleep_seconds()
    if sleep is not None:
        asleep = sleep["LIGHT"] + sleep["DEEP"] + sleep["REM"] + sleep["ASLEEP"]
        out["sleep_total_minutes"] = asleep / 60.0
        out["sleep_deep_minutes"] = sleep["DEEP"] / 60.0
        out["sleep_rem_minutes"] = sleep["REM"] / 60.0
        out["sleep_light_minutes"] = sleep["LIGHT"] / 60.0
        out["sleep_awake_minutes"] = sleep["AWAKE"] / 60.0
        in_bed = asleep + sleep["AWAKE"]
        out["sleep_efficiency"] = asleep / in_bed if in_bed > 0 else None
    by_type = {k: s / n for k, (n, s) in sorted(window.symptoms.items())}
    n_all = sum(n for n, _ in window.symptoms.values())
    if n_all:
        out["symptom_severity_mean"] = sum(s for _, s in window.symptoms.values()) / n_all
    out["symptom_severity_by_type"] = by_type
    return out


def rolling_7d(days: list[dict[str, Any] | None]) -> dict[str, float]:
    """Means over the non-missing days of a 7-day window (oldest first, today last).

    Keys: ``<feature>_mean7`` (present when at least one day has the feature) and
    ``days_observed7`` (number of non-missing days).
    """
    present = [d for d in days if d is not None]
    out: dict[str, float] = {"days_observed7": float(len(present))}
    for name in ROLLING_FEATURES:
        values = [d[name] for d in present if d.get(name) is not None]
        if values:
            out[f"{name}_mean7"] = math.fsum(values) / len(values)
    return out


class Normalizer:
    """Per-patient running mean/variance (Welford) of each model feature.

    ``zscores`` uses the statistics of earlier days only (needs two earlier values and a
    non-zero spread); ``update`` is called once per day, at its first publication.
    """

    __slots__ = ("stats",)

    def __init__(self, stats: dict[str, list[float]] | None = None) -> None:
        self.stats: dict[str, list[float]] = stats if stats is not None else {}

    def zscores(self, values: dict[str, Any]) -> dict[str, float]:
        out: dict[str, float] = {}
        for name in MODEL_FEATURES:
            x = values.get(name)
            st = self.stats.get(name)
            if x is None or st is None or st[0] < 2:
                continue
            sd = math.sqrt(st[2] / (st[0] - 1))
            if sd > 0:
                out[name] = (x - st[1]) / sd
        return out

    def update(self, values: dict[str, Any]) -> None:
        for name in MODEL_FEATURES:
            x = values.get(name)
            if x is None:
                continue
            st = self.stats.setdefault(name, [0.0, 0.0, 0.0])
            st[0] += 1
            d = x - st[1]
            st[1] += d / st[0]
            st[2] += d * (x - st[1])

    def to_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self.stats.items()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Normalizer:
        return cls({k: list(v) for k, v in data.items()})
