"""Anomaly, change and coupling monitors kept inside the twin state.

Anomaly detector - sizing choice
    River's ``HalfSpaceTrees(25 trees, height 8)`` pickles to ~420 KB, thirteen times the
    32 KB budget for a patient's whole twin. The daily biometric vector has seven dimensions
    and one row a day, so a tree ensemble would also stay data-starved for months. We keep a
    *robust running z-score* per feature instead (a diagonal Mahalanobis distance): three
    floats and a count per feature, ~0.5 KB in all. Updates are winsorised at ±3 SD (robust
    to the outliers being detected), exact (Welford) for the first 30 days and exponentially
    weighted afterwards so the baseline follows slow drift. The score is the root-mean-square
    z over the features present; until a feature has ``MIN_SAMPLES`` days the population prior
    (mean, SD) stands in. Anomalous days are not learned from.

Deterioration detection lives in :mod:`workers.twin.deterioration`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

ANOMALY_FEATURES = (
    "resting_heart_rate",
    "hrv_rmssd",
    "steps_total",
    "sleep_total_minutes",
    "heart_rate_mean",
    "spo2_mean",
    "respiratory_rate_mean",
)
COUPLING_FEATURES = ("sleep_total_minutes", "resting_heart_rate", "hrv_rmssd", "steps_total")
MIN_SAMPLES = 14
ANOMALY_THRESHOLD = 2.5
EXACT_WINDOW = 30


@dataclass
class RobustStats:
    """Winsorised running mean and variance of one feature."""

    n: int = 0
    mean: float = 0.0
    var: float = 0.0

    def z(self, x: float) -> float:
        """Standard score of ``x`` (SD floored to avoid division by ~0)."""
        return (x - self.mean) / max(math.sqrt(self.var), 1e-6 + abs(self.mean) * 0.01)

    def update(self, x: float) -> None:
        """Fold ``x`` in, clipped to ±3 SD once ten values are known."""
        if self.n >= 10:
            sd = math.sqrt(self.var)
            x = min(max(x, self.mean - 3 * sd), self.mean + 3 * sd)
        self.n += 1
        if self.n == 1:
            self.mean, self.var = x, 0.0
            return
        alpha = 1.0 / min(self.n, EXACT_WINDOW)
        delta = x - self.mean
        self.mean += alpha * delta
        # Welford's update when alpha = 1/n; the EW form afterwards.
        self.var = (1 - alpha) * (self.var + alpha * delta * delta)


@dataclass
class BiometricAnomaly:
    """Robust z-score anomaly detector over the daily biometric vector."""

    stats: dict[str, RobustStats] = field(
        default_factory=lambda: {k: RobustStats() for k in ANOMALY_FEATURES}
    )
    consecutive: int = 0

    def score(
        self, values: dict[str, float], prior: dict[str, tuple[float, float]]
    ) -> tuple[float | None, str | None, bool]:
        """Return ``(score, top_feature, personal)`` for one day's ``values``.

        ``personal`` is true when every scored feature used personal statistics.
        """
        sq: list[float] = []
        top, top_z, personal = None, 0.0, True
        for name in ANOMALY_FEATURES:
            x = values.get(name)
            if x is None:
                continue
            st = self.stats[name]
            if st.n >= MIN_SAMPLES:
                z = st.z(x)
            elif name in prior:
                mean, sd = prior[name]
                z, personal = (x - mean) / sd, False
            else:
                continue
            sq.append(z * z)
            if abs(z) > abs(top_z):
                top, top_z = name, z
        if not sq:
            return None, None, False
        return math.sqrt(sum(sq) / len(sq)), top, personal

    def zscores(self, values: dict[str, float], min_n: int = MIN_SAMPLES) -> dict[str, float]:
        """Standard scores against personal statistics only (features with ``min_n`` days)."""
        return {
            name: self.stats[name].z(x)
            for name, x in values.items()
            if name in self.stats and self.stats[name].n >= min_n
        }

    def learn(self, values: dict[str, float]) -> None:
        """Update the per-feature statistics with a (non-anomalous) day."""
        for name in ANOMALY_FEATURES:
            x = values.get(name)
            if x is not None:
                self.stats[name].update(x)


@dataclass
class CoMoment:
    """Running bivariate moments (Welford) for a Pearson correlation."""

    n: int = 0
    mx: float = 0.0
    my: float = 0.0
    sxx: float = 0.0
    syy: float = 0.0
    sxy: float = 0.0

    def update(self, x: float, y: float) -> None:
        """Add one ``(x, y)`` pair."""
        self.n += 1
        dx = x - self.mx
        self.mx += dx / self.n
        dy = y - self.my
        self.my += dy / self.n
        self.sxx += dx * (x - self.mx)
        self.syy += dy * (y - self.my)
        self.sxy += dx * (y - self.my)

    @property
    def corr(self) -> float | None:
        """Pearson correlation, ``None`` with fewer than 10 pairs or no variance."""
        if self.n < 10 or self.sxx <= 0 or self.syy <= 0:
            return None
        return self.sxy / math.sqrt(self.sxx * self.syy)


@dataclass
class LaggedCoupling:
    """Correlation of each biometric on day ``t`` with mean severity on day ``t + 1``."""

    pairs: dict[str, CoMoment] = field(default_factory=lambda: {k: CoMoment() for k in COUPLING_FEATURES})
    prev_day: int | None = None
    prev: dict[str, float] = field(default_factory=dict)

    def update(self, day: int, bio: dict[str, float], severity: float | None) -> None:
        """Pair yesterday's biometrics with today's severity, then remember today's."""
        if severity is not None and self.prev_day == day - 1:
            for name in COUPLING_FEATURES:
                if name in self.prev:
                    self.pairs[name].update(self.prev[name], severity)
        self.prev_day = day
        self.prev = {k: bio[k] for k in COUPLING_FEATURES if k in bio}

    def correlations(self) -> dict[str, float | None]:
        """Lag-1 correlation per biometric (``None`` until 10 pairs)."""
        return {k: self.pairs[k].corr for k in COUPLING_FEATURES}
