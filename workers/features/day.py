"""One patient-day of event-time state: small, mergeable, JSON-serialisable.

Holds hourly moments per metric (see :mod:`workers.features.moments`), a per-metric value
histogram for the robust z-score, the night's sleep stage seconds (for the night that
ENDS on this date, see :mod:`workers.features.patient`), symptom severity sums, quality
counters and the publication bookkeeping (``published`` count, ``dirty`` flag).
"""

from __future__ import annotations

from array import array
from typing import Any

from workers.features.moments import Moments, daily, fold, hourly
from workers.validation.catalog import METRICS

# indices into DayWindow.q (quality / bookkeeping counters)
ACCEPTED = 0  # valid biometric samples folded in
BOUND_OUTLIERS = 1  # samples outside the typical range (kept, counted)
DUPLICATES = 2
UNIT_MISMATCH = 3
NON_MONOTONIC = 4  # sample older than the previous one of the same device stream
LATE_FOLDED = 5  # events folded in after the day had been published
REPORTS = 6  # symptom reports and assessments attributed to the day
N_COUNTERS = 7

SLEEP_INDEX = {"AWAKE": 0, "LIGHT": 1, "DEEP": 2, "REM": 3, "ASLEEP": 4}


class DayWindow:
    """Event-time aggregates of one UTC day (``day`` = days since 1970-01-01)."""

    __slots__ = ("day", "dirty", "hist", "published", "q", "series", "sleep", "symptoms")

    def __init__(self, day: int) -> None:
        self.day = day
        self.series: dict[str, array[float]] = {}
        self.hist: dict[str, array[int]] = {}
        self.sleep: array[float] | None = None
        self.symptoms: dict[str, list[int]] = {}
        self.q = [0] * N_COUNTERS
        self.published = 0
        self.dirty = False

    def add_value(self, metric: str, hour: int, value: float, outlier: bool) -> None:
        """Fold a validated sample into its hourly slot and the quality histogram."""
        series = self.series.get(metric)
        if series is None:
            series = self.series[metric] = array("d")
        fold(series, hour, value)
        self.q[ACCEPTED] += 1
        if outlier:
            self.q[BOUND_OUTLIERS] += 1
            return
        spec = METRICS[metric].hist
        if spec is not None:
            lo, width, bins = spec
            hist = self.hist.get(metric)
            if hist is None:
                hist = self.hist[metric] = array("I", bytes(4 * bins))
            i = int((value - lo) / width)
            hist[i if i < bins else bins - 1] += 1

    def add_sleep(self, stage: str, seconds: float) -> None:
        if self.sleep is None:
            self.sleep = array("d", bytes(8 * len(SLEEP_INDEX)))
        self.sleep[SLEEP_INDEX[stage]] += seconds

    def add_symptom(self, symptom_type: str, severity: int) -> None:
        acc = self.symptoms.get(symptom_type)
        if acc is None:
            self.symptoms[symptom_type] = [1, severity]
        else:
            acc[0] += 1
            acc[1] += severity
        self.q[REPORTS] += 1

    def has_data(self) -> bool:
        """True if any accepted event is attributed to this day."""
        return bool(self.series or self.sleep is not None or self.q[REPORTS])

    def moments(self, metric: str) -> Moments | None:
        """Daily aggregate of a metric (merged hourly slots), None without samples."""
        return daily(self.series.get(metric))

    def hourly(self, metric: str) -> dict[int, Moments]:
        """Hour of day (UTC) -> aggregate of that hour."""
        return hourly(self.series.get(metric))

    def sleep_seconds(self) -> dict[str, float] | None:
        if self.sleep is None:
            return None
        return {stage: self.sleep[i] for stage, i in SLEEP_INDEX.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "series": {m: s.tolist() for m, s in self.series.items()},
            "hist": {m: h.tolist() for m, h in self.hist.items()},
            "sleep": None if self.sleep is None else self.sleep.tolist(),
            "symptoms": {k: list(v) for k, v in self.symptoms.items()},
            "q": list(self.q),
            "published": self.published,
            "dirty": self.dirty,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DayWindow:
        self = cls(data["day"])
        self.series = {m: array("d", s) for m, s in data["series"].items()}
        self.hist = {m: array("I", h) for m, h in data["hist"].items()}
        self.sleep = None if data["sleep"] is None else array("d", data["sleep"])
        self.symptoms = {k: list(v) for k, v in data["symptoms"].items()}
        self.q = list(data["q"])
        self.published = data["published"]
        self.dirty = data["dirty"]
        return self
