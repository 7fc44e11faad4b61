"""Scoring helpers of the twin fidelity bench: forecast pairs against the simple baselines.

Every forecast the twin makes is scored next to two baselines that need no model:

* ``persistence`` - the last observed value carried forward;
* ``mean_7d`` - the mean of the reports observed in the last seven calendar days (today
  included); it falls back to the last observed value when the week has no report.

and next to references that are not competitors: ``oracle``, the generator's own forecast
from the hidden state (every parameter and yesterday's latent state known), whose MAE is what
is left when only the day's shock and the report noise remain; and, where the generator
provides them (:mod:`bench._informed`), ``informed`` (every parameter known, the course
estimated from the reports: a gain that is achievable) and ``course_known`` (the noise-free
course known too: about the most any forecaster of the reports can gain).

The references estimate a mean. Scored against the reported severity they are published the
way the twin publishes its forecast (:class:`GridMedian`): as the median on the grid the
patient's daily means lie on, which lowers any mean forecaster's absolute error on that grid.
Against the hidden mood, which lies on no grid, they are scored as they are.

A forecast pair is kept whenever the twin made a forecast and a baseline exists: a last
severity of exactly 0 is a valid observation, not a missing one.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from workers.twin import forecast, grid

MEAN_DAYS = 7
ORACLE = "oracle"
REFERENCES = (ORACLE, "informed", "course_known")
TREND_DAYS = 7
TREND_POINTS = 0.5
"""A day is in a worsening (improving) phase when the patient's noise-free expected mood
(baseline plus episode and treatment effects, known to the generator) rose (fell) by at
least ``TREND_POINTS`` over the ``TREND_DAYS`` before the forecast target."""


Z_95 = statistics.NormalDist().inv_cdf(0.975)


def share_interval(hits: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval (95% by default) of the share ``hits / trials``.

    A detection share of 162 episodes moves by several points from one draw to the next; the
    interval says whether a goal such as ">= 95% detected" is met, missed, or not yet told
    apart by the episodes at hand. ``None`` without trials."""
    if trials <= 0:
        return None
    p = hits / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_interval(count: int, exposure: float, z: float = Z_95) -> tuple[float, float] | None:
    """Interval (95% by default) of a Poisson rate: ``count`` events over ``exposure`` (e.g.
    false alarms per patient-year). Byar's approximation of the exact interval, within 1% of
    it from a count of 5 up. ``None`` without exposure."""
    if exposure <= 0:
        return None
    lower = 0.0
    if count > 0:
        lower = count * (1 - 1 / (9 * count) - z / (3 * math.sqrt(count))) ** 3
    k = count + 1
    upper = k * (1 - 1 / (9 * k) + z / (3 * math.sqrt(k))) ** 3
    return lower / exposure, upper / exposure


BOOTSTRAP_RESAMPLES = 1000


def gain_interval(
    errors: dict[str, tuple[float, float]], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """95% percentile interval of a forecaster's MAE gain over a baseline, ``1 - model / base``,
    by resampling patients (each patient's pairs stay together: a patient's days are not
    independent draws). ``errors`` maps a patient to the sums of absolute errors of the model
    and of the baseline over that patient's pairs. Deterministic for a given ``seed``."""
    sums = list(errors.values())
    if len(sums) < 2:
        return None
    rng = random.Random(seed)
    gains = []
    for _ in range(resamples):
        picked = rng.choices(sums, k=len(sums))
        base = sum(b for _, b in picked)
        gains.append(1.0 - sum(m for m, _ in picked) / base if base else 0.0)
    gains.sort()
    return gains[int(0.025 * resamples)], gains[int(0.975 * resamples) - 1]


def median_interval(values: list[int], z: float = Z_95) -> tuple[int, int] | None:
    """Distribution-free 95% interval of the median: the order statistics that the binomial
    count of values below the median puts around it (normal approximation). ``None`` under 6
    values, where it would span them all."""
    if len(values) < 6:
        return None
    ordered = sorted(values)
    n = len(ordered)
    lo = max(math.floor(n / 2 - z * math.sqrt(n) / 2), 1)
    hi = min(math.ceil(1 + n / 2 + z * math.sqrt(n) / 2), n)
    return ordered[lo - 1], ordered[hi - 1]


def histogram(values: list[int]) -> dict[str, int]:
    """``{value: count}`` with string keys in ascending order (JSON-able, poolable)."""
    return {str(v): n for v, n in sorted(Counter(values).items())}


def from_histogram(counts: dict[str, int]) -> list[int]:
    """The values a :func:`histogram` counts, ascending."""
    return [int(v) for v, n in sorted(counts.items(), key=lambda kv: int(kv[0])) for _ in range(n)]


def _mae(pairs: list[tuple[float, float]]) -> float | None:
    return statistics.fmean(abs(a - b) for a, b in pairs) if pairs else None


def _bias(pairs: list[tuple[float, float]]) -> float | None:
    return statistics.fmean(a - b for a, b in pairs) if pairs else None


def _gain(model: float | None, base: float | None) -> float | None:
    return None if model is None or not base else 1.0 - model / base


@dataclass
class GridMedian:
    """One patient's reference forecast published as the twin publishes its own
    (:func:`workers.twin.forecast.published_point`): the median on the report grid."""

    shares: dict[int, float] = field(default_factory=dict)
    errors: forecast.RunningMAE = field(default_factory=forecast.RunningMAE)

    def observe(self, value: float) -> None:
        """Learn the grid from a reported day's mean severity."""
        self.shares = grid.learn_shares(self.shares, value)

    def point(self, centre: float) -> float:
        """The published point for the mean forecast ``centre``."""
        return forecast.published_point(centre, self.shares, self.errors.mae)

    def score(self, point: float, truth: float) -> None:
        """Count a published point's absolute error (the spread of the next ones)."""
        self.errors.update(truth, point)


@dataclass
class RecentMean:
    """Mean of the values observed in the last ``days`` calendar days."""

    days: int = MEAN_DAYS
    seen: list[tuple[int, float]] = field(default_factory=list)

    def add(self, day: int, value: float | None) -> None:
        """Record ``value`` observed on ``day`` (``None`` = no report that day)."""
        if value is not None:
            self.seen.append((day, value))
        self.seen = [(d, v) for d, v in self.seen if d > day - self.days]

    def mean(self) -> float | None:
        """The window mean, ``None`` when the window is empty."""
        return statistics.fmean(v for _, v in self.seen) if self.seen else None


@dataclass
class ForecastScore:
    """Forecast pairs of the twin and of each baseline, on the same targets."""

    baselines: tuple[str, ...] = ("persistence", "mean_7d")
    pairs: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    phase: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)
    intervals: list[tuple[float, float, float]] = field(default_factory=list)
    interval_phase: dict[str, list[bool]] = field(default_factory=dict)
    by_patient: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(
        self, preds: dict[str, float], truth: float, phase: str | None = None, patient: str | None = None
    ) -> None:
        """Score one target; ``preds`` holds ``twin``, every baseline and any of the
        ``REFERENCES`` (the generator's forecasts with hidden knowledge, not competitors).
        With ``patient``, the absolute errors are also summed per patient, for the intervals
        of the twin's gains (:func:`gain_interval`)."""
        for name in ("twin", *self.baselines, *(r for r in REFERENCES if r in preds)):
            self.pairs.setdefault(name, []).append((preds[name], truth))
            if phase is not None:
                self.phase.setdefault(phase, {}).setdefault(name, []).append((preds[name], truth))
        if patient is not None:
            sums = self.by_patient.setdefault(patient, {})
            for name in ("twin", *self.baselines):
                sums[name] = sums.get(name, 0.0) + abs(preds[name] - truth)

    def add_interval(self, lo: float, hi: float, truth: float, phase: str | None = None) -> None:
        """Record whether ``truth`` fell inside the twin's interval ``[lo, hi]``."""
        self.intervals.append((lo, hi, truth))
        if phase is not None:
            self.interval_phase.setdefault(phase, []).append(lo <= truth <= hi)

    def report(self) -> dict[str, Any]:
        """MAE of each forecaster, the twin's gain over each baseline, bias by phase."""
        twin = _mae(self.pairs.get("twin", []))
        out: dict[str, Any] = {"pairs": len(self.pairs.get("twin", [])), "twin_mae": twin}
        for name in self.baselines:
            base = _mae(self.pairs.get(name, []))
            out[f"{name}_mae"] = base
            out[f"improvement_vs_{name}"] = _gain(twin, base)
            if self.by_patient:
                out[f"improvement_vs_{name}_ci95"] = gain_interval(
                    {p: (sums["twin"], sums[name]) for p, sums in sorted(self.by_patient.items())}
                )
        for phase, by_name in sorted(self.phase.items()):
            out[f"bias_{phase}"] = {
                "pairs": len(by_name.get("twin", [])),
                **{
                    name: _bias(pairs)
                    for name in ("twin", *self.baselines, *REFERENCES)
                    if (pairs := by_name.get(name))
                },
            }
        best = min((v for name in self.baselines if (v := out[f"{name}_mae"]) is not None), default=None)
        for name in REFERENCES:
            ref = _mae(self.pairs.get(name, []))
            if ref is None:
                continue
            out[name] = {
                "mae": ref,
                **{f"improvement_vs_{b}": _gain(ref, out[f"{b}_mae"]) for b in self.baselines},
                # of the reference's gain over the best baseline, the twin's share
                "twin_share_of_achievable_gain": (
                    None if twin is None or best is None or best <= ref else (best - twin) / (best - ref)
                ),
            }
        if self.intervals:
            inside = sum(lo <= y <= hi for lo, hi, y in self.intervals)
            out["interval"] = {
                "pairs": len(self.intervals),
                "coverage": inside / len(self.intervals),
                "mean_width": statistics.fmean(hi - lo for lo, hi, _ in self.intervals),
                **{f"coverage_{phase}": sum(v) / len(v) for phase, v in sorted(self.interval_phase.items())},
            }
        return out


@dataclass
class DetectionScore:
    """Deterioration alerts by the rule that raised them, and PHQ-9 >= 15 crossings."""

    by_rule: dict[str, list[int]] = field(default_factory=dict)
    false_by_rule: dict[str, int] = field(default_factory=dict)
    crossing_delays: list[int] = field(default_factory=list)
    crossings_missed: int = 0
    crossings_in_episode: int = 0
    crossings_in_episode_alerted: int = 0
    delays_from_phq10: list[int] = field(default_factory=list)
    phq10_episodes: int = 0  # episodes with an observed PHQ-9 >= 10 (detected or not)
    crossing: EpisodeScore = field(default_factory=lambda: EpisodeScore())

    def add(
        self,
        episodes: list[Any],
        rules: list[tuple[str, int]],
        crossings: list[int],
        phq10_days: list[int] | None = None,
    ) -> None:
        """Score one patient: ``rules`` are (rule, day) of raised deterioration alerts,
        ``crossings`` the days of observed PHQ-9 totals >= 15 after one < 15, ``phq10_days``
        the days of observed PHQ-9 totals >= 10 (the first one in an episode is its clinical
        onset; an alert raised earlier in the episode counts as delay 0)."""
        for ep in episodes:
            first10 = [d for d in phq10_days or [] if ep.onset <= d <= ep.end]
            hits = [d for _, d in rules if ep.onset <= d <= ep.end]
            self.phq10_episodes += bool(first10)
            if first10 and hits:
                self.delays_from_phq10.append(max(min(hits) - first10[0], 0))
        self.crossing.add(episodes, [d for _, d in rules])
        for rule, day in rules:
            inside = any(ep.onset <= day <= ep.end + 21 for ep in episodes)
            self.by_rule.setdefault(rule, []).append(day)
            if not inside:
                self.false_by_rule[rule] = self.false_by_rule.get(rule, 0) + 1
        days = sorted(d for _, d in rules)
        for c in crossings:
            after = [d - c for d in days if c <= d <= c + 28]
            in_episode = any(ep.onset <= c <= ep.end + 14 for ep in episodes)
            self.crossings_in_episode += in_episode
            # Alerted when a deterioration alert was raised in this episode up to the crossing.
            before = in_episode and any(
                ep.onset <= d <= c for ep in episodes if ep.onset <= c <= ep.end + 14 for d in days
            )
            self.crossings_in_episode_alerted += in_episode and (before or bool(after))
            if after:
                self.crossing_delays.append(after[0])
            else:
                self.crossings_missed += 1

    def report(self, years: float) -> dict[str, Any]:
        """Alerts and false alarms per patient-year by rule; delay from PHQ-9 >= 15 crossings."""
        return {
            "alerts_by_rule": {r: len(d) for r, d in sorted(self.by_rule.items())},
            "false_alarms_per_patient_year_by_rule": {
                r: n / years for r, n in sorted(self.false_by_rule.items())
            },
            "median_delay_from_first_phq9_ge_10_days": (
                statistics.median(self.delays_from_phq10) if self.delays_from_phq10 else None
            ),
            **self.crossing.crossing_report(),
            # an episode whose observed PHQ-9 never reached 10 is below the clinical threshold
            # that measurement-based care acts on: how many were there, and how many alerted
            "episodes_with_phq9_ge_10": self.phq10_episodes,
            "episodes_with_phq9_ge_10_and_alert": len(self.delays_from_phq10),
            "phq9_15_crossings": len(self.crossing_delays) + self.crossings_missed,
            "phq9_15_crossings_alerted_within_28d": len(self.crossing_delays),
            "phq9_15_crossings_in_episodes": self.crossings_in_episode,
            "phq9_15_crossings_in_episodes_under_alert": self.crossings_in_episode_alerted,
            "median_delay_from_phq9_15_crossing_days": (
                statistics.median(self.crossing_delays) if self.crossing_delays else None
            ),
        }


@dataclass
class IllnessScore:
    """Illness spells flagged by any ``BIOMETRIC_ANOMALY`` alert raised during the spell."""

    GRACE_DAYS = 2
    by_rise: dict[str, list[bool]] = field(default_factory=dict)
    delays: list[int] = field(default_factory=list)
    false_by_rule: dict[str, int] = field(default_factory=dict)

    @classmethod
    def covers(cls, spells: list[Any], day: int) -> bool:
        """Whether ``day`` is in a spell or its ``GRACE_DAYS`` after."""
        return any(s.start <= day <= s.end + cls.GRACE_DAYS for s in spells)

    def add(self, spells: list[Any], anomaly_days: list[int], alerts: list[tuple[str, int]]) -> None:
        """Score one patient's spells against its (rule, day) biometric alerts."""
        for spell in spells:
            hit = sorted(d for _, d in alerts if spell.start <= d <= spell.end)
            band = "2-4" if spell.rhr_rise < 4 else "4-7" if spell.rhr_rise < 7 else "7-10"
            self.by_rise.setdefault(band, []).append(bool(hit))
            if hit:
                self.delays.append(hit[0] - spell.start)
        for rule, day in alerts:
            if day not in anomaly_days and not self.covers(spells, day):
                self.false_by_rule[rule] = self.false_by_rule.get(rule, 0) + 1

    def report(self, years: float) -> dict[str, Any]:
        """Share of spells flagged (overall and by resting heart-rate rise), delay, false alerts."""
        flags = [f for v in self.by_rise.values() for f in v]
        return {
            "spells": len(flags),
            "flagged": sum(flags),
            "flagged_share": sum(flags) / len(flags) if flags else None,
            "flagged_share_by_rhr_rise_bpm": {
                band: sum(v) / len(v) for band, v in sorted(self.by_rise.items())
            },
            "median_delay_days": statistics.median(self.delays) if self.delays else None,
            "false_alerts_per_patient_year_by_rule": {
                r: n / years for r, n in sorted(self.false_by_rule.items())
            },
            "false_alerts_per_patient_year": sum(self.false_by_rule.values()) / years,
        }


def trend_phase(expected: list[float], target: int) -> str | None:
    """``worsening``/``improving`` when the expected (noise-free) mood moved by
    ``TREND_POINTS`` or more over the ``TREND_DAYS`` before ``target``; ``None`` otherwise."""
    if target - TREND_DAYS < 0:
        return None
    change = expected[target] - expected[target - TREND_DAYS]
    if change >= TREND_POINTS:
        return "worsening"
    if change <= -TREND_POINTS:
        return "improving"
    return None


BASELINE_RISE = 1.5
"""``mean_7d`` detector: alarm when the 7-day mean of daily reports is this many points above
the mean of the reports of the 8-63 days before (at least ``BASELINE_MIN_REPORTS`` of them)."""
BASELINE_CLEAR = 0.75
BASELINE_MIN_REPORTS = 14


@dataclass
class BaselineDetectors:
    """Deterioration alarms from two rules that need no model, fed the same inputs as the twin.

    * ``persistence`` - the last PHQ-9 total carried forward: alarm when a PHQ-9 is >= 10 and
      the previous one was < 10 (or there was none);
    * ``mean_7d`` - the 7-day mean of daily reports rising ``BASELINE_RISE`` points above the
      patient's mean of the 8-63 days before; it re-arms below ``BASELINE_CLEAR``.

    Each alarm is a rising edge, scored like the twin's ``SUSTAINED_DETERIORATION`` alerts.
    """

    reports: list[tuple[int, float]] = field(default_factory=list)
    last_phq9: int | None = None
    mean_on: bool = False
    alarms: dict[str, list[int]] = field(default_factory=lambda: {"persistence": [], "mean_7d": []})

    def daily(self, day: int, severity: float | None) -> None:
        """Feed one day's mean report (``None`` = none)."""
        if severity is not None:
            self.reports.append((day, severity))
        self.reports = [(d, v) for d, v in self.reports if d > day - 63]
        week = [v for d, v in self.reports if d > day - 7]
        before = [v for d, v in self.reports if d <= day - 7]
        if not week or len(before) < BASELINE_MIN_REPORTS:
            return
        rise = statistics.fmean(week) - statistics.fmean(before)
        if not self.mean_on and rise >= BASELINE_RISE:
            self.mean_on = True
            self.alarms["mean_7d"].append(day)
        elif self.mean_on and rise < BASELINE_CLEAR:
            self.mean_on = False

    def phq9(self, day: int, total: int) -> None:
        """Feed one PHQ-9 total."""
        if total >= 10 and (self.last_phq9 is None or self.last_phq9 < 10):
            self.alarms["persistence"].append(day)
        self.last_phq9 = total


@dataclass
class EpisodeScore:
    """Episodes detected, delay from onset and false alarms of one detector."""

    episodes: int = 0
    delays: list[int] = field(default_factory=list)
    false_alarms: int = 0
    crossing_episodes: int = 0
    delays_from_crossing: list[int] = field(default_factory=list)

    def add(self, episodes: list[Any], alarm_days: list[int]) -> None:
        """Score one patient's alarms: an episode is detected by an alarm between its onset
        and end; an alarm more than 21 days from every episode is false. Where the episode's
        noise-free PHQ-9 reaches 10 (``phq9_10_day``), the delay is also counted from that day
        (an alarm before it counts as 0)."""
        for ep in episodes:
            self.episodes += 1
            hits = sorted(d for d in alarm_days if ep.onset <= d <= ep.end)
            if hits:
                self.delays.append(hits[0] - ep.onset)
            crossed = getattr(ep, "phq9_10_day", None)
            if crossed is not None:
                self.crossing_episodes += 1
                if hits:
                    self.delays_from_crossing.append(max(hits[0] - crossed, 0))
        self.false_alarms += sum(
            1 for d in alarm_days if not any(ep.onset <= d <= ep.end + 21 for ep in episodes)
        )

    def report(self, years: float) -> dict[str, Any]:
        return {
            "episodes": self.episodes,
            "detected": len(self.delays),
            "median_delay_days": statistics.median(self.delays) if self.delays else None,
            "false_alarms": self.false_alarms,
            "false_alarms_per_patient_year": self.false_alarms / years,
            **self.crossing_report(),
        }

    def crossing_report(self) -> dict[str, Any]:
        """Episodes whose noise-free PHQ-9 reached 10, how many alarmed, and the median delay
        from that day."""
        return {
            "episodes_reaching_phq9_10": self.crossing_episodes,
            "detected_of_those": len(self.delays_from_crossing),
            "median_delay_from_phq9_10_days": (
                statistics.median(self.delays_from_crossing) if self.delays_from_crossing else None
            ),
            "median_delay_from_phq9_10_days_ci95": median_interval(self.delays_from_crossing),
            "delays_from_phq9_10_days": histogram(self.delays_from_crossing),
        }
