"""Deterioration detection following measurement-based care.

Rules, each named in the alert it raises (``evidence["rule"]``), with the numbers behind every
rule and a plain-language ``reason``:

``PHQ9_RISE``
    A PHQ-9 total in the clinical range (>= 10) at least ``PHQ9_MIN_RISE`` points above the
    personal PHQ-9 baseline, weighed together with the daily reports: the rise in units of
    ``PHQ9_SPREAD`` (how far a patient's PHQ-9 wanders between episodes: measurement error
    plus day-to-day mood) plus ``DAILY_WEIGHT`` x the 7-day mean's rise in personal SDs must
    reach ``RISE_EVIDENCE``. A large rise needs little daily corroboration (a compressive
    rater's daily reports move about a point in an episode while the PHQ-9 moves fully), a
    small one needs more; neither alone alarms on noise.
``DAILY_AFTER_PHQ9_RISE``
    The same weighing on a later day, with the last PHQ-9 total and today's 7-day mean, against
    ``FOLLOW_EVIDENCE``: a PHQ-9 rise the daily reports did not yet confirm on its day is
    confirmed once they rise, between PHQ-9 administrations.
``PHQ9_CROSSED_10``
    A PHQ-9 total >= 10 after one < 10 (into the moderate band), confirmed by the daily
    reports (7-day mean at least ``CROSSING_CONFIRM`` personal SDs above baseline) and a rise
    of at least ``CROSSING_MIN_RISE`` points over the PHQ-9 baseline.
``PHQ9_CROSSED_15``
    A PHQ-9 total >= 15 after one < 15 (into moderately severe) that is a reliable rise
    (``CROSS15_MIN_RISE`` points over the personal baseline, beyond the 5-point reliable change)
    confirmed by the daily reports (``CROSS15_CONFIRM`` SDs). Alerts under its own key while a
    deterioration is already active: it is an escalation. A crossing that itself raises the
    flag is one alert, not two (``workers.twin.state``). A chronic patient whose PHQ-9 hovers
    around 15 does not alarm at every pass.
``SEVERITY_CUSUM``
    A one-sided CUSUM of the daily mean symptom severity against the personal baseline, in
    units of the patient's own SD: ``S = max(0, S + z - K)``, firing at ``S >= H``. Scaling by
    the patient's own spread lets a compressive rater alarm as readily as one who uses the
    whole scale.

The 7-day mean is that of the reports of the last seven days: a report older than a week never
stands in for this one (a PHQ-9 rise after a week without daily reports is weighed on its own),
and a week without reports neither confirms nor clears a deterioration.

Personal baselines are robust to earlier episodes: the severity baseline is the interquartile
mean of the daily values of the last ``BASELINE_DAYS`` reports (its spread the root mean
square deviation, which unlike the mean absolute deviation is not shrunk by integer reports
that mostly repeat one value) and the PHQ-9 baseline the median of the last ``PHQ9_HISTORY``
totals. Neither learns while a deterioration is active, so an episode never becomes its own
baseline, and an episode older than the window no longer lifts it: a relapse is measured
against the partly recovered level of the weeks before it, not against the illness before
treatment. State: at most ``BASELINE_DAYS + PHQ9_HISTORY`` numbers and a few scalars.

The thresholds were tuned on the bench's project cohort (seed 7) and its trajectory cohort
drawn with seed 24 (``FOLLOW_EVIDENCE`` and ``CROSSING_CONFIRM`` on cohort draws 61 and 72 and
trajectory draws 65 and 76), and are judged on other draws (README, "Twin fidelity").
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
PHQ9_MIN_RISE = 4
PHQ9_SPREAD = 4.6
DAILY_WEIGHT = 1.2
RISE_EVIDENCE = 3.0
FOLLOW_EVIDENCE = 3.8
CROSSING_MIN_RISE = 3
CROSSING_CONFIRM = 1.6
CROSS15_MIN_RISE = 6
CROSS15_CONFIRM = 1.3
CUSUM_K = 1.0
CUSUM_H = 8.0
MIN_SCALE = 0.5
MIN_ACTIVE_DAYS = 7
CLEAR_BELOW = 0.7
"""The flag clears (after ``MIN_ACTIVE_DAYS``) once the 7-day mean is within this many
personal SDs of baseline and no PHQ-9 rule holds."""

RULES = (
    "PHQ9_CROSSED_15",
    "PHQ9_RISE",
    "PHQ9_CROSSED_10",
    "DAILY_AFTER_PHQ9_RISE",
    "SEVERITY_CUSUM",
)


def interquartile_mean(values: list[float]) -> float:
    """Mean of the central half of ``values`` (robust like a median, not stuck on a grid)."""
    ordered = sorted(values)
    q = len(ordered) // 4
    return statistics.fmean(ordered[q : len(ordered) - q])


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _num(value: float | None) -> str:
    return "none" if value is None else f"{value:.1f}"


@dataclass
class DeteriorationMonitor:
    """Sustained-deterioration flag from the rules above; pure and deterministic."""

    window: list[float] = field(default_factory=list)
    recent: list[float | None] = field(default_factory=list)  # the last 7 days, None: no report
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
    def level(self) -> tuple[float, float] | None:
        """``(baseline, scale)`` of daily severity, ``None`` until ``MIN_BASELINE_DAYS``.

        The baseline is the interquartile mean of the window (robust like a median, but not
        stuck on the 0-10 grid); the scale the root mean square deviation from it, floored at
        ``MIN_SCALE``."""
        if len(self.window) < MIN_BASELINE_DAYS:
            return None
        base = interquartile_mean(self.window)
        spread = statistics.fmean((v - base) ** 2 for v in self.window) ** 0.5
        return base, max(spread, MIN_SCALE)

    @property
    def baseline(self) -> float | None:
        """Personal baseline of daily severity (see :meth:`level`)."""
        lv = self.level()
        return None if lv is None else lv[0]

    @property
    def scale(self) -> float:
        """Personal spread of daily severity (see :meth:`level`); 1 before a baseline exists."""
        lv = self.level()
        return 1.0 if lv is None else lv[1]

    @property
    def phq9_baseline(self) -> float | None:
        """Median of the last PHQ-9 totals taken while no deterioration was active."""
        return _median([float(t) for t in self.phq9_totals])

    def recent_mean(self) -> float | None:
        """Mean severity of the reports of the last ``RECENT_DAYS`` days; ``None`` without one.
        Older reports do not stand in: a week without reports says nothing of this week."""
        reported = [v for v in self.recent if v is not None]
        return sum(reported) / len(reported) if reported else None

    def recent_rise(self, level: tuple[float, float] | None = None) -> float | None:
        """7-day mean above baseline, in personal SDs (``level`` if already computed)."""
        mean, lv = self.recent_mean(), level or self.level()
        return None if mean is None or lv is None else (mean - lv[0]) / lv[1]

    def rise_evidence(
        self, total: int | None = None, level: tuple[float, float] | None = None
    ) -> float | None:
        """Weighed evidence of the ``PHQ9_RISE`` rules for ``total`` (default: the last PHQ-9
        total): its rise in ``PHQ9_SPREAD`` units plus ``DAILY_WEIGHT`` x the 7-day rise in SDs.
        ``None`` when the total is below 10 or rose less than ``PHQ9_MIN_RISE`` points."""
        total = self.phq9_last if total is None else total
        if total is None or total < PHQ9_MODERATE:
            return None
        base = self.phq9_baseline
        if base is None or total - base < PHQ9_MIN_RISE:
            return None
        daily = self.recent_rise(level)
        return (total - base) / PHQ9_SPREAD + DAILY_WEIGHT * (0.0 if daily is None else daily)

    # ------------------------------------------------------------------ updates
    def update(self, y: float | None, elapsed: int = 1) -> tuple[bool, bool]:
        """Advance ``elapsed`` days (the days between had no daily features) to a day with mean
        severity ``y`` (``None`` if unreported).

        Returns ``(fired, active)``: whether a rule newly raised the flag today and the flag.
        """
        new_rule = None
        skipped: list[float | None] = [None] * min(max(elapsed - 1, 0), RECENT_DAYS)
        self.recent = [*self.recent, *skipped, y][-RECENT_DAYS:]
        if y is not None:
            self.n += 1
            lv = self.level()
            if lv is not None:
                self.cusum = max(0.0, self.cusum + (y - lv[0]) / lv[1] - CUSUM_K)
                if self.cusum >= CUSUM_H and not self.cusum_fired:
                    self.cusum_fired = True
                    new_rule = "SEVERITY_CUSUM"
                evidence = self.rise_evidence(level=lv)
                if new_rule is None and evidence is not None and evidence >= FOLLOW_EVIDENCE:
                    new_rule = "DAILY_AFTER_PHQ9_RISE"
            if not self.active:
                self.window = [*self.window, y][-BASELINE_DAYS:]
        before = self.active
        self._decide(new_rule)
        self.active_days = self.active_days + 1 if self.active else 0
        return self.active and not before, self.active

    def observe_phq9(self, total: int) -> bool:
        """Apply a PHQ-9 total: crossings and weighed rises; returns the flag after it."""
        prev, base = self.phq9_last, self.phq9_baseline
        self.phq9_prev, self.phq9_last = prev, total
        rise = None if base is None else total - base
        lv = self.level()
        daily = self.recent_rise(lv)
        daily = 0.0 if daily is None else daily
        evidence = self.rise_evidence(total, lv)
        holds = self.active and rise is not None and rise >= PHQ9_RELIABLE_CHANGE and total >= PHQ9_MODERATE
        self.phq9_rise = (evidence is not None and evidence >= RISE_EVIDENCE) or holds
        confirmed = rise is not None and rise >= CROSSING_MIN_RISE and daily >= CROSSING_CONFIRM
        reliable = rise is not None and rise >= CROSS15_MIN_RISE and daily >= CROSS15_CONFIRM
        below_10 = prev is not None and prev < PHQ9_MODERATE
        below_15 = prev is not None and prev < PHQ9_MODERATELY_SEVERE
        self.crossed_10 = total >= PHQ9_MODERATE and ((below_10 and confirmed) or self.crossed_10)
        self.crossed_15 = total >= PHQ9_MODERATELY_SEVERE and ((below_15 and reliable) or self.crossed_15)
        holding = [
            rule
            for rule, on in (
                ("PHQ9_CROSSED_15", self.crossed_15),
                ("PHQ9_RISE", self.phq9_rise),
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
        if self.recent_mean() is None:
            return  # no report this week: silence is not recovery
        rise = self.recent_rise()
        if rise is None or rise < CLEAR_BELOW:
            self.active, self.rule = False, None
            self.cusum, self.cusum_fired = 0.0, False

    # ------------------------------------------------------------------ explanation
    def reason(self, level: tuple[float, float] | None = None) -> str:
        """Why the flag is up, in words: the rule that raised it and any PHQ-9 crossing holding."""
        if self.rule is None and not (self.crossed_10 or self.crossed_15):
            return "no rule holds"
        lv = level or self.level()
        base = None if lv is None else lv[0]
        daily = f"7-day mean {_num(self.recent_mean())} vs baseline {_num(base)}, "
        daily += f"{_num(self.recent_rise(lv))} personal SDs above"
        phq9 = f"PHQ-9 {self.phq9_last} after {self.phq9_prev}, baseline {_num(self.phq9_baseline)}"
        evidence = _num(self.rise_evidence(level=lv))
        why = {
            "SEVERITY_CUSUM": f"daily reports above baseline for days: CUSUM {self.cusum:.1f} >= "
            f"{CUSUM_H:.1f}; {daily}",
            "PHQ9_RISE": f"{phq9}; weighed with the daily reports ({daily}): evidence "
            f"{evidence} >= {RISE_EVIDENCE:.1f}",
            "DAILY_AFTER_PHQ9_RISE": f"daily reports now confirm the last PHQ-9 rise ({phq9}; {daily}): "
            f"evidence {evidence} >= {FOLLOW_EVIDENCE:.1f}",
            "PHQ9_CROSSED_10": f"{phq9}: into the moderate band, confirmed by the daily reports ({daily})",
            "PHQ9_CROSSED_15": f"{phq9}: into moderately severe, a reliable rise confirmed by the daily "
            f"reports ({daily})",
        }
        parts = [] if self.rule is None else [f"{self.rule}: {why.get(self.rule, 'carried over')}"]
        for rule, on in (("PHQ9_CROSSED_15", self.crossed_15), ("PHQ9_CROSSED_10", self.crossed_10)):
            if on and rule != self.rule:
                parts.append(f"{rule}: {why[rule]}")
        return "; ".join(parts)

    def evidence(self) -> dict[str, float | int | str | None]:
        """Which rule fired, why, and the numbers behind every rule (for the alert's evidence)."""
        lv = self.level()
        return {
            "rule": self.rule,
            "reason": self.reason(lv),
            "severity_mean_7d": self.recent_mean(),
            "severity_baseline": None if lv is None else lv[0],
            "severity_baseline_method": f"iqm_{BASELINE_DAYS}d",
            "severity_scale": 1.0 if lv is None else lv[1],
            "severity_rise_sd": self.recent_rise(lv),
            "cusum": self.cusum,
            "cusum_threshold": CUSUM_H,
            "phq9_total": self.phq9_last,
            "phq9_previous": self.phq9_prev,
            "phq9_baseline": self.phq9_baseline,
            "phq9_rise_evidence": self.rise_evidence(level=lv),
            "phq9_rise_threshold": RISE_EVIDENCE,
            "phq9_rise": int(self.phq9_rise),
            "phq9_crossed_10": int(self.crossed_10),
            "phq9_crossed_15": int(self.crossed_15),
        }
