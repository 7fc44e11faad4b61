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

Change detection
    River's ``PageHinkley`` in upward mode on daily mean severity, confirmed by a sustained
    rise of the 7-day mean above a slowly moving personal baseline (which freezes while a
    deterioration is active); a reliable PHQ-9 rise (>= 5 points) also confirms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from river import drift

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
RECENT_DAYS = 7
PHQ9_RELIABLE_RISE = 5
MIN_ACTIVE_DAYS = 14


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

    def learn(self, values: dict[str, float]) -> None:
        """Update the per-feature statistics with a (non-anomalous) day."""
        for name in ANOMALY_FEATURES:
            x = values.get(name)
            if x is not None:
                self.stats[name].update(x)


class UpwardPageHinkley(drift.PageHinkley):
    """River's ``PageHinkley`` in ``mode="up"`` without the bound-method attribute.

    The parent stores ``self._test_drift = self._test_increase``, a reference cycle that
    makes the pickle depend on object identity; a plain method keeps the bytes canonical.
    """

    def __init__(self, **kwargs: float) -> None:
        super().__init__(mode="up", **kwargs)  # type: ignore[arg-type]

    def _reset(self) -> None:
        super()._reset()
        self.__dict__.pop("_test_drift", None)

    def _test_drift(self, test_increase: float, test_decrease: float) -> bool:
        return test_increase > self.threshold


def _new_ph() -> UpwardPageHinkley:
    return UpwardPageHinkley(min_instances=14, delta=0.4, threshold=7.0, alpha=0.995)


@dataclass
class DeteriorationMonitor:
    """Sustained-deterioration flag from Page-Hinkley plus a confirmation rule."""

    ph: UpwardPageHinkley = field(default_factory=_new_ph)
    baseline: float | None = None
    n: int = 0
    recent: list[float] = field(default_factory=list)
    days_since_fire: int | None = None
    phq9_baseline: float | None = None
    phq9_rise: bool = False
    active: bool = False
    rise_on: float = 2.0
    rise_off: float = 1.25
    active_days: int = 0

    def recent_mean(self) -> float | None:
        """Mean of the last ``RECENT_DAYS`` observed severities."""
        return sum(self.recent) / len(self.recent) if self.recent else None

    def update(self, y: float | None) -> tuple[bool, bool]:
        """Advance one day with severity ``y`` (``None`` if unreported).

        Returns ``(fired, active)``: whether Page-Hinkley fired today and the flag.
        """
        fired = False
        if self.days_since_fire is not None:
            self.days_since_fire += 1
        if y is not None:
            self.ph.update(y)
            fired = bool(self.ph.drift_detected)
            if fired:
                self.days_since_fire = 0
            self.recent = [*self.recent, y][-RECENT_DAYS:]
            self.n += 1
            if not self.active:
                self.baseline = y if self.baseline is None else self.baseline + 0.03 * (y - self.baseline)
        self._decide()
        self.active_days = self.active_days + 1 if self.active else 0
        return fired, self.active

    def observe_phq9(self, total: float) -> bool:
        """Track PHQ-9 against its baseline; returns the flag after the update.

        A reliable rise is >= 5 points above the baseline (an EW mean of earlier totals,
        frozen while deteriorating) into at least the moderate band (>= 10).
        """
        if self.phq9_baseline is None:
            self.phq9_baseline = total
        self.phq9_rise = total - self.phq9_baseline >= PHQ9_RELIABLE_RISE and total >= 10
        if not self.phq9_rise and not self.active:
            self.phq9_baseline += 0.3 * (total - self.phq9_baseline)
        self._decide()
        return self.active

    def _decide(self) -> None:
        mean = self.recent_mean()
        if mean is None or self.baseline is None or self.n < MIN_SAMPLES:
            self.active = self.phq9_rise
            return
        rise = mean - self.baseline
        recent_fire = self.days_since_fire is not None and self.days_since_fire <= 14
        if not self.active:
            self.active = (recent_fire and rise >= self.rise_on) or (self.phq9_rise and rise >= self.rise_off)
        else:
            # Minimum duration damps flapping; then clear once back near baseline.
            held = self.active_days < MIN_ACTIVE_DAYS
            self.active = held or rise >= self.rise_off or self.phq9_rise


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
