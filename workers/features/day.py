"""One patient-day of event-time state: small, mergeable, stored as a day part and hour cells.

Holds hourly moments per metric (see :mod:`workers.features.moments`), a per-metric value
histogram for the robust z-score, the night's sleep stage seconds (for the night that
ENDS on this date, see :mod:`workers.features.patient`), symptom severity sums, quality
counters, the publication bookkeeping (``published`` count, ``dirty`` flag) and the
fingerprints of the event ids folded in, per stream and hour (deduplication).

Storage (:mod:`workers.features.parts`) splits a day into its *meta* (histograms, sleep,
symptoms, counters, bookkeeping) and one *cell* per hour (that hour's moments and
fingerprints), so a live event rewrites one small cell, not the day. ``changed_hours``
names the cells changed since the last write.

Deduplication keeps 32-bit BLAKE2b fingerprints per (stream, hour): 4 bytes per event.
A new event is taken for a duplicate only when its fingerprint equals one of the ``n``
others of its stream in the same hour: probability ``n / 2**32`` (1.4e-8 at 60 events an
hour, i.e. about one sample in 70 million per minute-level stream).
"""

from __future__ import annotations

import base64
import sys
from array import array
from hashlib import blake2b
from typing import Any

from workers.features.moments import SLOT, Moments, daily, fold, hourly
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
HOURS = 24
FINGERPRINT = "I"  # array typecode of the 32-bit id fingerprints
assert array(FINGERPRINT).itemsize == 4


def fingerprint(event_id: str) -> int:
    """Unsigned 32-bit BLAKE2b fingerprint of an event id (the same in every process)."""
    return int.from_bytes(blake2b(event_id.encode(), digest_size=4).digest(), "little")


class DayWindow:
    """Event-time aggregates of one UTC day (``day`` = days since 1970-01-01)."""

    __slots__ = (
        "changed_hours",
        "day",
        "dirty",
        "hist",
        "published",
        "q",
        "seen",
        "series",
        "sleep",
        "symptoms",
    )

    def __init__(self, day: int) -> None:
        self.day = day
        self.series: dict[str, array[float]] = {}
        self.hist: dict[str, array[int]] = {}
        self.sleep: array[float] | None = None
        self.symptoms: dict[str, list[int]] = {}
        self.q = [0] * N_COUNTERS
        self.published = 0
        self.dirty = False
        self.seen: dict[int, array[int]] = {}  # stream index * 24 + hour -> fingerprints
        self.changed_hours: set[int] = set()

    def admit(self, stream: int, hour: int, event_id: str) -> bool:
        """Record an event id of ``stream`` in ``hour``; False if it was folded in before."""
        key = stream * HOURS + hour
        fp = fingerprint(event_id)
        seen = self.seen.get(key)
        if seen is None:
            self.seen[key] = array(FINGERPRINT, (fp,))
        elif fp in seen:
            return False
        else:
            seen.append(fp)
        self.changed_hours.add(hour)
        return True

    def add_value(self, metric: str, hour: int, value: float, outlier: bool) -> None:
        """Fold a validated sample into its hourly slot and the quality histogram."""
        series = self.series.get(metric)
        if series is None:
            series = self.series[metric] = array("d")
        fold(series, hour, value)
        self.changed_hours.add(hour)
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

    # ---- storage ----------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """Everything but the hour cells (histograms trimmed to their non-zero span)."""
        return {
            "hist": {m: _trim(h) for m, h in self.hist.items()},
            "sleep": None if self.sleep is None else self.sleep.tolist(),
            "symptoms": {k: list(v) for k, v in self.symptoms.items()},
            "q": list(self.q),
            "published": self.published,
            "dirty": self.dirty,
        }

    def cell(self, hour: int) -> dict[str, Any] | None:
        """The moments and fingerprints of one hour; None when the hour holds nothing."""
        moments = {}
        for metric, series in self.series.items():
            for o in range(len(series) - SLOT, -1, -SLOT):  # newest slots last: live data is there
                if series[o] == hour:
                    moments[metric] = series[o + 1 : o + SLOT].tolist()
                    break
        seen = {str(k // HOURS): _encode(v) for k, v in self.seen.items() if k % HOURS == hour}
        if not moments and not seen:
            return None
        return {"m": moments, "s": seen}

    def hours(self) -> set[int]:
        """Hours that have a cell."""
        out = {k % HOURS for k in self.seen}
        for series in self.series.values():
            out.update(int(series[o]) for o in range(0, len(series), SLOT))
        return out

    @classmethod
    def from_parts(cls, day: int, meta: dict[str, Any], cells: dict[int, dict[str, Any]]) -> DayWindow:
        """Inverse of :meth:`meta` and :meth:`cell` (cells in any order)."""
        self = cls(day)
        for metric, trimmed in meta["hist"].items():
            bins = METRICS[metric].hist
            assert bins is not None
            self.hist[metric] = _untrim(trimmed, bins[2])
        self.sleep = None if meta["sleep"] is None else array("d", meta["sleep"])
        self.symptoms = {k: list(v) for k, v in meta["symptoms"].items()}
        self.q = list(meta["q"])
        self.published = meta["published"]
        self.dirty = meta["dirty"]
        for hour in sorted(cells):
            cell = cells[hour]
            for metric, slot in cell["m"].items():
                self.series.setdefault(metric, array("d")).extend((hour, *slot))
            for stream, encoded in cell["s"].items():
                self.seen[int(stream) * HOURS + hour] = _decode(encoded)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The whole day as one JSON-serialisable dict (tests, views)."""
        cells = {str(h): self.cell(h) for h in sorted(self.hours())}
        return {"day": self.day, **self.meta(), "cells": cells}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DayWindow:
        return cls.from_parts(data["day"], data, {int(h): c for h, c in data["cells"].items()})


def _trim(hist: array[int]) -> list[Any]:
    """[first non-zero bin, counts up to the last non-zero bin]."""
    raw = hist.tobytes()
    size = hist.itemsize
    first = (len(raw) - len(raw.lstrip(b"\0"))) // size
    if first == len(hist):
        return [0, []]
    last = (len(raw.rstrip(b"\0")) + size - 1) // size
    return [first, hist[first:last].tolist()]


def _untrim(trimmed: list[Any], bins: int) -> array[int]:
    start, counts = trimmed
    hist = array("I", bytes(4 * bins))
    hist[start : start + len(counts)] = array("I", counts)
    return hist


def _encode(fingerprints: array[int]) -> str:
    if sys.byteorder == "big":
        fingerprints = array(FINGERPRINT, fingerprints)
        fingerprints.byteswap()
    return base64.b64encode(fingerprints.tobytes()).decode("ascii")


def _decode(encoded: str) -> array[int]:
    fingerprints = array(FINGERPRINT)
    fingerprints.frombytes(base64.b64decode(encoded))
    if sys.byteorder == "big":
        fingerprints.byteswap()
    return fingerprints
