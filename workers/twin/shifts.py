"""Sustained biometric shifts: CUSUMs of daily wearable aggregates against the personal baseline.

The single-day anomaly score (:mod:`workers.twin.monitors`) catches large one-day spikes; an
illness spell moves resting heart rate by only 2-10 bpm, but for days (Radin et al., Lancet
Digit Health 2020; Mishra et al., Nat Biomed Eng 2020). Each feature below keeps a one-sided
CUSUM of its daily standard score ``z`` (from the anomaly detector's robust running mean and
SD, the personal baseline) in the direction an illness moves it::

    S = min(max(0, S + clip(direction * z, -Z_CLIP, Z_CLIP) - K), CAP)

Resting heart rate is the primary signal: its CUSUM reaching ``H`` raises the shift. The
secondary features (HRV down, steps down, sleep up) can raise it only together, two of them
at ``H``. While a shift is active (up to ``MAX_FREEZE_DAYS``) the baseline does not learn,
so the shift is not absorbed into it. The shift clears after
``CLEAR_DAYS`` days with every CUSUM back at 0. State: one float per feature and a few
scalars.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: feature -> direction of an illness-like shift (+1 up, -1 down)
SHIFT_FEATURES: dict[str, int] = {
    "resting_heart_rate": 1,
    "hrv_rmssd": -1,
    "steps_total": -1,
    "sleep_total_minutes": 1,
}
PRIMARY = "resting_heart_rate"
K = 1.25
H = 3.5
CAP = 2 * H
Z_CLIP = 3.0
"""Daily standard scores are clipped to +-``Z_CLIP`` before they enter a CUSUM, so that a
single-day spike (the single-day detector's business) cannot raise a sustained shift."""
MIN_DAYS = 28
"""Days of a feature's personal statistics before its CUSUM runs (early SDs are unstable)."""
SECONDARY_NEEDED = 2
CLEAR_DAYS = 3
SLEEP_VETO = -0.5
SLEEP_ALPHA = 0.3
MAX_FREEZE_DAYS = 14
"""The baseline stops learning for at most this many days: a change that lasts longer is
no longer an illness spell but the new normal (or a mood episode), and is learned."""


@dataclass
class BiometricShift:
    """Per-feature CUSUMs and the sustained-shift flag."""

    cusum: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SHIFT_FEATURES, 0.0))
    active: bool = False
    since_day: int | None = None
    quiet_days: int = 0
    frozen_days: int = 0
    sleep_trend: float = 0.0
    trigger: str | None = None

    def suspected(self) -> bool:
        """Whether the baseline should stop learning today: a shift is active, for at most
        ``MAX_FREEZE_DAYS`` days in a row (freezing while a CUSUM merely builds up made the
        single-day detector's baseline stale and raised its false alarms)."""
        return self.active and self.frozen_days <= MAX_FREEZE_DAYS

    def update(self, day: int, z: dict[str, float]) -> bool:
        """Fold one day's standard scores (features missing today are skipped).

        Returns whether the shift was newly raised today.
        """
        for name, direction in SHIFT_FEATURES.items():
            if name in z:
                clipped = min(max(direction * z[name], -Z_CLIP), Z_CLIP)
                self.cusum[name] = min(max(0.0, self.cusum[name] + clipped - K), CAP)
        if "sleep_total_minutes" in z:
            self.sleep_trend += SLEEP_ALPHA * (z["sleep_total_minutes"] - self.sleep_trend)
        self.frozen_days = self.frozen_days + 1 if self.active else 0
        if self.active:
            self.quiet_days = self.quiet_days + 1 if not any(self.cusum.values()) else 0
            if self.quiet_days >= CLEAR_DAYS:
                self.active, self.trigger, self.since_day, self.quiet_days = False, None, None, 0
            return False
        trigger = self._trigger()
        if trigger is None:
            return False
        self.active, self.trigger, self.since_day, self.quiet_days = True, trigger, day, 0
        return True

    def _trigger(self) -> str | None:
        if self.cusum[PRIMARY] >= H and self.sleep_trend >= SLEEP_VETO:
            return PRIMARY
        high = [n for n in SHIFT_FEATURES if n != PRIMARY and self.cusum[n] >= H]
        return "+".join(high) if len(high) >= SECONDARY_NEEDED else None

    def evidence(self) -> dict[str, float | int | str | None]:
        """Rule, trigger feature(s), CUSUMs and threshold (codes and numbers only)."""
        out: dict[str, float | int | str | None] = {
            "rule": "SUSTAINED_SHIFT",
            "trigger": self.trigger,
            "cusum_threshold": H,
            "sleep_trend_z": self.sleep_trend,
        }
        out.update({f"cusum_{name}": value for name, value in self.cusum.items()})
        return out
