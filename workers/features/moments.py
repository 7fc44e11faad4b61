"""Mergeable moments (Welford / Chan et al.) stored compactly in ``array('d')``.

A per-metric hourly series is a flat array of 6-double slots
``[hour, n, mean, m2, min, max]``, one slot per hour that has data (sparse, so a
once-a-day metric costs 48 bytes). Folding a value updates one slot; a daily aggregate
merges the slots, so late values land exactly where an in-order stream would put them.
"""

from __future__ import annotations

import math
from array import array
from typing import NamedTuple

SLOT = 6


class Moments(NamedTuple):
    """n (count), mean, min, max and sample standard deviation (None when count < 2)."""

    n: int
    mean: float
    min: float
    max: float
    std: float | None
    m2: float

    @property
    def total(self) -> float:
        return self.mean * self.n


def new_series() -> array[float]:
    return array("d")


def fold(series: array[float], hour: int, value: float) -> None:
    """Add ``value`` to the slot of ``hour`` (created on first use)."""
    n_slots = len(series)
    o = n_slots - SLOT
    if o < 0 or series[o] != hour:
        o = 0
        while o < n_slots and series[o] != hour:
            o += SLOT
        if o == n_slots:
            series.extend((hour, 1.0, value, 0.0, value, value))
            return
    n = series[o + 1] + 1.0
    series[o + 1] = n
    mean = series[o + 2]
    d = value - mean
    mean += d / n
    series[o + 2] = mean
    series[o + 3] += d * (value - mean)
    if value < series[o + 4]:
        series[o + 4] = value
    if value > series[o + 5]:
        series[o + 5] = value


def merge(
    a: tuple[float, float, float, float, float], b: tuple[float, float, float, float, float]
) -> tuple[float, float, float, float, float]:
    """Chan's parallel merge of two (n, mean, m2, min, max) tuples."""
    na, ma, m2a, lo_a, hi_a = a
    nb, mb, m2b, lo_b, hi_b = b
    if na == 0:
        return b
    n = na + nb
    d = mb - ma
    return (n, ma + d * nb / n, m2a + m2b + d * d * na * nb / n, min(lo_a, lo_b), max(hi_a, hi_b))


def _finish(acc: tuple[float, float, float, float, float]) -> Moments | None:
    n, mean, m2, lo, hi = acc
    if n == 0:
        return None
    std = math.sqrt(max(m2, 0.0) / (n - 1)) if n > 1 else None
    return Moments(int(n), mean, lo, hi, std, m2)


def daily(series: array[float] | None) -> Moments | None:
    """Merge all hourly slots in hour order (order-independent input, fixed merge order)."""
    if not series:
        return None
    slots = sorted(range(0, len(series), SLOT), key=series.__getitem__)
    acc = (0.0, 0.0, 0.0, math.inf, -math.inf)
    for o in slots:
        acc = merge(acc, tuple(series[o + 1 : o + SLOT]))  # type: ignore[arg-type]
    return _finish(acc)


def hourly(series: array[float] | None) -> dict[int, Moments]:
    """Hour of day -> moments of that hour."""
    out: dict[int, Moments] = {}
    for o in range(0, len(series or ()), SLOT):
        assert series is not None
        m = _finish((series[o + 1], series[o + 2], series[o + 3], series[o + 4], series[o + 5]))
        if m is not None:
            out[int(series[o])] = m
    return out
