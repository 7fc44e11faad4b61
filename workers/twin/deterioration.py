"""Deterioration detection following measurement-based care.

Rules, each named in the alert it raises (``evidence["rule"]``) with the numbers behind it:

``PHQ9_RELIABLE_RISE``
    A PHQ-9 total at least ``PHQ9_RELIABLE_CHANGE`` (5) points above the personal PHQ-9
    baseline and in the clinical range (>= 10): reliable and clinically significant change
    (Jacobson-Truax; 5 points is the PHQ-9 reliable-change criterion used in
    measurement-based care).
``PHQ9_CROSSED_10``
    A PHQ-9 total >= 10 after one < 10 (into the moderate band), confirmed by the daily
    reports (7-day mean at least ``CROSSING_CONFIRM`` personal SDs above baseline) or by a
    rise of at least ``CROSSING_MIN_RISE`` points over the PHQ-9 baseline, so that a score
    hovering at the cut-off does not alarm on noise alone.
``PHQ9_CROSSED_15``
    A PHQ-9 total >= 15 after one < 15 (into moderately severe). Always alerts, under its
    own key, even while a deterioration is already active: it is an escalation.
``SEVERITY_CUSUM``
    A one-sided CUSUM of the daily mean symptom severity against the personal baseline,
    in units of the patient's own robust SD: ``S = max(0, S + z - K)``, firing at ``S >= H``.
    Scaling by the patient's own spread lets a compressive rater (small moves on the 0-10
    scale) alarm as readily as one who uses the whole scale.

Personal baselines are robust to earlier episodes: the severity baseline is the median of
the daily values of the last ``BASELINE_DAYS`` days (interquartile mean; its spread the
scaled mean absolute deviation) and the PHQ-9 baseline the median of the last ``PHQ9_HISTORY`` totals. Neither
learns while a deterioration is active, so an episode never becomes its own baseline, and
an episode older than the window no longer lifts it (a slowly adapting mean would remember
it for months). State: at most ``BASELINE_DAYS + PHQ9_HISTORY`` numbers and a few scalars.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

BASELINE_DAYS = 56
MIN_BASELINE_DAYS = 14
RECENT_DAYS = 7
PHQ9_HISTORY = 6
PHQ9_RELIABLE_CHANGE = 5
PHQ9_MODERATE = 10
PHQ9_MODERATELY_SEVERE = 15
CROSSING_MIN_RISE = 3
CROSSING_CONFIRM = 1.0
RISE_CONFIRM = 1.0
CROSS15_CONFIRM = 1.0
CUSUM_K = 1.5
CUSUM_H = 6.0
MIN_SCALE = 0.5
MIN_ACTIVE_DAYS = 14
CLEAR_BELOW = 0.75
"""The flag clears (after ``MIN_ACTIVE_DAYS``) once the 7-day mean is within this many
personal SDs of baseline and no PHQ-9 rule holds."""

RULES = ("PHQ9_CROSSED_15", "PHQ9_RELIABLE_RISE", "PHQ9_CROSSED_10", "SEVERITY_CUSUM")


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass
class DeteriorationMonitor:
    """Sustained-deterioration flag from the rules above; pure and deterministic."""

    window: list[float] = field(default_factory=list)
    recent: list[float] = field(default_factory=list)
    cusum: float = 0.0
    phq9_totals: list[int] = field(default_factory=list)
    phq9_last: int | None = None
    phq9_prev: int | None = None
    phq9_rise: bool = False
    crossed_10: bool = False
    crossed_15: bool = False
    cusum_fired: bool = False
    active: bool = False
    active_days: int = 0
    rule: str | None = None
    n: int = 0

    # ------------------------------------------------------------------ baselines
    @property
    def baseline(self) -> float | None:
        """Interquartile mean of the daily severities in the baseline window (``None`` until
        ``MIN_BASELINE_DAYS``): robust like a median, but not stuck on the 0-10 grid."""
        if len(self.window) < MIN_BASELINE_DAYS:
            return None
        ordered = sorted(self.window)
        q = len(ordered) // 4
        return statistics.fmean(ordered[q : len(ordered) - q])

    @property
    def scale(self) -> float:
        """Spread of daily severity: 1.2533 x mean absolute deviation from the baseline
        (the SD for normal data), floored at ``MIN_SCALE``."""
        base = self.baseline
        if base is None:
            return 1.0
        mad = statistics.fmean(abs(v - base) for v in self.window)
        return max(1.2533 * mad, MIN_SCALE)

    @property
    def phq9_baseline(self) -> float | None:
        """Median of the last PHQ-9 totals taken while no deterioration was active."""
        return _median([float(t) for t in self.phq9_totals])

    def recent_mean(self) -> float | None:
        """Mean of the last ``RECENT_DAYS`` observed severities."""
        return sum(self.recent) / len(self.recent) if self.recent else None

    def recent_rise(self) -> float | None:
        """7-day mean above baseline, in personal SDs."""
        mean, base = self.recent_mean(), self.baseline
        return None if mean is None or base is None else (mean - base) / self.scale

    # ------------------------------------------------------------------ updates
    def update(self, y: float | None) -> tuple[bool, bool]:
        """Advance one day with mean severity ``y`` (``None`` if unreported).

        Returns ``(fired, active)``: whether a rule newly fired today and the flag.
        """
        fired = False
        if y is not None:
            self.n += 1
            self.recent = [*self.recent, y][-RECENT_DAYS:]
            base = self.baseline
            if base is not None:
                self.cusum = max(0.0, self.cusum + (y - base) / self.scale - CUSUM_K)
                if self.cusum >= CUSUM_H and not self.cusum_fired:
                    self.cusum_fired = fired = True
            if not self.active:
                self.window = [*self.window, y][-BASELINE_DAYS:]
        before = self.active
        self._decide("SEVERITY_CUSUM" if fired else None)
        self.active_days = self.active_days + 1 if self.active else 0
        return fired and not before, self.active

    def observe_phq9(self, total: int) -> bool:
        """Apply a PHQ-9 total: crossings and reliable change; returns the flag after it."""
        prev, base = self.phq9_last, self.phq9_baseline
        self.phq9_prev, self.phq9_last = prev, total
        rise = None if base is None else total - base
        daily = self.recent_rise()
        daily = 0.0 if daily is None else daily
        self.phq9_rise = (
            rise is not None
            and rise >= PHQ9_RELIABLE_CHANGE
            and total >= PHQ9_MODERATE
            and (daily >= RISE_CONFIRM or self.active)
        )
        confirmed = rise is not None and rise >= CROSSING_MIN_RISE and daily >= CROSSING_CONFIRM
        below_10 = prev is not None and prev < PHQ9_MODERATE
        below_15 = prev is not None and prev < PHQ9_MODERATELY_SEVERE
        self.crossed_10 = total >= PHQ9_MODERATE and ((below_10 and confirmed) or self.crossed_10)
        self.crossed_15 = total >= PHQ9_MODERATELY_SEVERE and (
            (below_15 and daily >= CROSS15_CONFIRM) or self.crossed_15
        )
        holding = [
            rule
            for rule, on in (
                ("PHQ9_CROSSED_15", self.crossed_15),
                ("PHQ9_RELIABLE_RISE", self.phq9_rise),
                ("PHQ9_CROSSED_10", self.crossed_10),
            )
            if on
        ]
        self._decide(holding[0] if holding else None)
        if not self.active:
            self.phq9_totals = [*self.phq9_totals, total][-PHQ9_HISTORY:]
        return self.active

    def _decide(self, new_rule: str | None) -> None:
        if not self.active:
            if new_rule is not None:
                self.active, self.rule = True, new_rule
            return
        phq9_holds = self.phq9_rise or self.crossed_10 or self.crossed_15
        if self.active_days < MIN_ACTIVE_DAYS or phq9_holds:
            return
        rise = self.recent_rise()
        if rise is None or rise < CLEAR_BELOW:
            self.active, self.rule = False, None
            self.cusum, self.cusum_fired = 0.0, False

    def evidence(self) -> dict[str, float | int | str | None]:
        """Which rule fired and the numbers behind every rule (for the alert's evidence)."""
        return {
            "rule": self.rule,
            "severity_mean_7d": self.recent_mean(),
            "severity_baseline": self.baseline,
            "severity_baseline_method": f"iqm_{BASELINE_DAYS}d",
            "severity_scale": self.scale,
            "severity_rise_sd": self.recent_rise(),
            "cusum": self.cusum,
            "cusum_threshold": CUSUM_H,
            "phq9_total": self.phq9_last,
            "phq9_previous": self.phq9_prev,
            "phq9_baseline": self.phq9_baseline,
            "phq9_reliable_rise": int(self.phq9_rise),
            "phq9_crossed_10": int(self.crossed_10),
            "phq9_crossed_15": int(self.crossed_15),
        }
