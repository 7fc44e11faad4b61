"""Forecasters that know a patient's parameters: what is achievable from the reports.

The oracle (``SyntheticPatient.oracle``) knows yesterday's hidden state, so its gain over the
7-day mean is more than any forecaster of the reports can have. Two references bracket what
is achievable, on the trajectory generator (:mod:`bench._trajectories`), whose structure is
linear: a PHQ-9-scale course plus an AR(1) daily fluctuation, read through the patient's own
use of the 0-10 scale with report noise. The project cohort (:mod:`bench._cohort`) has the
same structure on the 0-10 scale (read as 2.7 PHQ-9 points per point, gain 1), its known daily
pattern the sleep push in place of the day of the week.

``informed``
    Knows every parameter of the patient (the AR coefficient and shock size, the scale's
    gain, anchor and offset, the report noise, the day-of-week amplitude) and each day's
    number of reports, but not the course: it estimates the course from the reports with
    Kalman filters (level + AR(1) state) whose level drifts at 0.05-1.0 PHQ-9 points a day,
    mixed by the inverse 16th power of their exponentially weighted absolute error (the
    twin's own weighting). A forecaster that could be built if the parameters were known:
    the achievable gain is at least this.
``course_known``
    Knows in addition the noise-free course of every day (episodes, treatment response,
    day-of-week effect, illness), so only the AR(1) fluctuation is filtered from the
    reports. It knows more than the reports can tell, so no forecaster of the reports gains
    materially more (the clipping of the scale and the rounding of reports make the bound
    approximate, not exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from workers.twin.deterioration import BASELINE_DAYS, MIN_BASELINE_DAYS, interquartile_mean

PHQ_PER_POINT = 2.7
LEVEL_DRIFTS = (0.05, 0.2, 0.5, 1.0)
"""Daily random-walk steps (PHQ-9 points, one SD) of the course in the informed filter bank."""
ERROR_ALPHA = 0.05
POWER = 16
ROUNDING_VARIANCE = 1.0 / 12.0
"""Each report is rounded to a whole point: the uniform rounding error's variance."""


@dataclass(frozen=True)
class ReportModel:
    """A patient's hidden parameters (all in PHQ-9 points unless stated)."""

    gain: float
    """Share of a severity move that shows on the patient's 0-10 reports."""
    anchor: float
    """0-10 point the scale is compressed around."""
    offset: float
    """0-10 points the patient adds to every report."""
    report_sd: float
    """0-10 points: the SD of one report around the noise-free report."""
    phi: float
    """AR(1) coefficient of the daily fluctuation."""
    shock_sd: float
    """SD of the fluctuation's daily shock."""
    dow_amplitude: float
    """Scale of the day-of-week effect."""

    def on_scale(self, phq: float) -> float:
        """The noise-free 0-10 report of a PHQ-9-scale severity."""
        x = phq / PHQ_PER_POINT
        return min(max(self.anchor + self.gain * (x - self.anchor) + self.offset, 0.0), 10.0)

    def to_phq(self, report: float) -> float:
        """The PHQ-9-scale severity a 0-10 report stands for (the scale's inverse, unclipped)."""
        return ((report - self.anchor - self.offset) / self.gain + self.anchor) * PHQ_PER_POINT

    def report_variance(self, n_reports: int) -> float:
        """Variance, in PHQ-9 points squared, of the day's mean of ``n_reports`` reports."""
        return (PHQ_PER_POINT / self.gain) ** 2 * (self.report_sd**2 + ROUNDING_VARIANCE) / n_reports

    @property
    def ar_variance(self) -> float:
        """Stationary variance of the AR(1) fluctuation."""
        return self.shock_sd**2 / (1.0 - self.phi**2)


@dataclass
class _ArFilter:
    """Kalman filter of the AR(1) fluctuation around a known course (PHQ-9 points)."""

    model: ReportModel
    mean: float = 0.0
    var: float = 0.0

    def __post_init__(self) -> None:
        self.var = self.model.ar_variance

    def step(self) -> None:
        """Advance one day."""
        phi = self.model.phi
        self.mean, self.var = phi * self.mean, phi**2 * self.var + self.model.shock_sd**2

    def observe(self, z: float, noise_var: float) -> tuple[float, float]:
        """Update with ``z``, the day's reading of the fluctuation; returns the innovation and
        its variance."""
        innovation, s = z - self.mean, self.var + noise_var
        gain = self.var / s
        self.mean, self.var = self.mean + gain * innovation, (1.0 - gain) * self.var
        return innovation, s


@dataclass
class _LevelArFilter:
    """Kalman filter of ``level + ar``: level a random walk, ar an AR(1), both in PHQ-9 points."""

    drift: float
    model: ReportModel
    x: tuple[float, float] | None = None
    p: tuple[float, float, float] = (0.0, 0.0, 0.0)  # covariance: var level, cov, var ar

    def step(self) -> None:
        """Advance one day."""
        if self.x is None:
            return
        level, ar = self.x
        pll, pla, paa = self.p
        phi = self.model.phi
        self.x = (level, phi * ar)
        self.p = (pll + self.drift**2, phi * pla, phi**2 * paa + self.model.shock_sd**2)

    def observe(self, z: float, variance: float) -> None:
        """Update with an observation of ``level + ar`` with the given noise variance."""
        if self.x is None:
            self.x = (z, 0.0)
            self.p = (9.0, 0.0, self.model.ar_variance)
            return
        level, ar = self.x
        pll, pla, paa = self.p
        s = pll + 2 * pla + paa + variance
        kl, ka = (pll + pla) / s, (pla + paa) / s
        innovation = z - level - ar
        self.x = (level + kl * innovation, ar + ka * innovation)
        # P - K (H P), with H P = (pll + pla, pla + paa)
        hl, ha = pll + pla, pla + paa
        self.p = (pll - kl * hl, pla - kl * ha, paa - ka * ha)

    def forecast(self) -> float | None:
        """Tomorrow's ``level + ar`` before the day-of-week effect."""
        return None if self.x is None else self.x[0] + self.model.phi * self.x[1]


def informed_forecasts(
    model: ReportModel, severity: list[float | None], n_reports: list[int], dow: list[float]
) -> list[float | None]:
    """``out[t]`` is the forecast of day ``t``'s report made at the end of day ``t - 1``
    (``None`` until the first report).

    ``severity[t]`` is day ``t``'s mean report (``None``: no report), ``n_reports[t]`` how many
    reports it averages, ``dow[t]`` the generator's day-of-week pattern before its amplitude.
    """
    bank = [_LevelArFilter(d, model) for d in LEVEL_DRIFTS]
    errors: list[float | None] = [None] * len(bank)
    pending: list[float | None] = [None] * len(bank)
    out: list[float | None] = [None]
    for t, y in enumerate(severity):
        for i, f in enumerate(bank):
            if t:
                f.step()
            if y is None:
                continue
            if (pred := pending[i]) is not None:
                old = errors[i]
                errors[i] = abs(y - pred) if old is None else old + ERROR_ALPHA * (abs(y - pred) - old)
            f.observe(model.to_phq(y) - model.dow_amplitude * dow[t], model.report_variance(n_reports[t]))
        if t + 1 == len(severity):
            break
        pending = [
            None
            if (level := f.forecast()) is None
            else model.on_scale(level + model.dow_amplitude * dow[t + 1])
            for f in bank
        ]
        out.append(_mix(pending, errors))
    return out


def course_known_forecasts(
    model: ReportModel, severity: list[float | None], n_reports: list[int], course: list[float]
) -> list[float | None]:
    """Like :func:`informed_forecasts`, knowing ``course[t]``: day ``t``'s noise-free PHQ-9
    severity (day-of-week effect and illness included), so only the AR(1) part is filtered."""
    ar = _ArFilter(model)
    out: list[float | None] = [None]
    seen = False
    for t, y in enumerate(severity):
        if t:
            ar.step()
        if y is not None:
            seen = True
            ar.observe(model.to_phq(y) - course[t], model.report_variance(n_reports[t]))
        if t + 1 < len(severity):
            out.append(model.on_scale(course[t + 1] + model.phi * ar.mean) if seen else None)
    return out


def _mix(preds: list[float | None], errors: list[float | None]) -> float | None:
    weights = [
        (p, 1.0 / ((1.0 if e is None else e) + 0.05) ** POWER)
        for p, e in zip(preds, errors, strict=True)
        if p is not None
    ]
    if not weights:
        return None
    return sum(p * w for p, w in weights) / sum(w for _, w in weights)


CUSUM_K = 0.5
CUSUM_H = 5.0
CUSUM_HOLD_DAYS = 14
"""The informed detector's CUSUM allowance and threshold (in innovation SDs) and how long its
flag stays up after the last crossing: chosen on the tuning draws (trajectories seed 24,
cohort seed 7) as the most episodes, then the shortest median delay, at no more than 0.3 false
alarms per patient-year. The same setting is the best on both."""


def informed_alarms(
    model: ReportModel,
    severity: list[float | None],
    n_reports: list[int],
    calm: list[float] | None,
    *,
    k: float = CUSUM_K,
    h: float = CUSUM_H,
) -> list[int]:
    """Days a deterioration detector that knows the patient raises an alarm (rising edges).

    ``calm[t]`` is day ``t``'s PHQ-9-scale course without episodes (treatment response and
    day-of-week effect included): the detector knows the personal baseline the twin must
    estimate. With ``calm=None`` it estimates that baseline from the reports instead, as the
    twin does (:class:`_EstimatedBaseline`). A Kalman filter of the AR(1) fluctuation around
    the baseline whitens the reports; a one-sided CUSUM of the standardized innovations
    (allowance ``k``, threshold ``h``) raises the alarm, restarts at each crossing, and the flag
    falls after :data:`CUSUM_HOLD_DAYS` days without one.
    """
    ar = _ArFilter(model)
    estimate = _EstimatedBaseline()
    cusum, since, active = 0.0, 0, False
    alarms: list[int] = []
    for t, y in enumerate(severity):
        if t:
            ar.step()
        if y is None:
            continue
        phq = model.to_phq(y)
        base = estimate.level() if calm is None else calm[t]
        if base is None:
            estimate.learn(phq)
            continue
        innovation, s = ar.observe(phq - base, model.report_variance(n_reports[t]))
        cusum = max(0.0, cusum + innovation / s**0.5 - k)
        if active and t - since > CUSUM_HOLD_DAYS:
            active = False
        if cusum > h:
            if not active:
                alarms.append(t)
            active, since, cusum = True, t, 0.0
        if calm is None and not active and cusum < ESTIMATE_FREEZE_CUSUM:
            estimate.learn(phq)
    return alarms


ESTIMATE_FREEZE_CUSUM = 2.0
"""The estimated baseline is the twin's (``workers.twin.deterioration``): the interquartile mean
of the last ``BASELINE_DAYS`` reported days, from ``MIN_BASELINE_DAYS`` on; here it learns only
while no alarm is up and the CUSUM is below 2."""


@dataclass
class _EstimatedBaseline:
    """A personal baseline estimated from the reports (PHQ-9 points), robust to earlier
    episodes as the twin's is: the interquartile mean of a window that does not learn while
    a deterioration is suspected."""

    window: list[float] = field(default_factory=list)

    def level(self) -> float | None:
        return interquartile_mean(self.window) if len(self.window) >= MIN_BASELINE_DAYS else None

    def learn(self, phq: float) -> None:
        self.window = [*self.window, phq][-BASELINE_DAYS:]


POPULATION_NOISE = {"phi": 0.6, "shock_sd": 1.7, "report_sd": 0.75}
"""A population's AR coefficient, daily shock (PHQ-9 points) and report SD (0-10 points), in
place of the patient's own, for the references that know less (:data:`KNOWLEDGE`)."""
POPULATION_REPORTS = 2
"""Reports a day assumed where the count is not known (the twin sees only their mean)."""

KNOWLEDGE: dict[str, tuple[str, float, float]] = {
    "informed_estimated_baseline": ("noise", 0.5, 6.0),
    "scale_known": ("scale", 0.75, 8.0),
    "population": ("none", 0.75, 6.0),
}
"""Reference detectors that know less than ``informed``; each estimates the baseline from the
reports (:class:`_EstimatedBaseline`). ``informed_estimated_baseline`` knows every noise
parameter and each day's number of reports; ``scale_known`` knows only the patient's scale gain
(how much of a severity change shows on the 0-10 reports) and assumes :data:`POPULATION_NOISE`;
``population`` knows nothing of the patient (gain 1). Each CUSUM setting (allowance,
threshold) was chosen as :data:`CUSUM_K` was: the most episodes at no more than 0.3 false
alarms per patient-year on trajectory seed 24."""


def knowledge_alarms(
    name: str, model: ReportModel, severity: list[float | None], n_reports: list[int]
) -> list[int]:
    """Alarms of the reference detector ``name`` of :data:`KNOWLEDGE` for one patient."""
    known, k, h = KNOWLEDGE[name]
    if known == "noise":
        return informed_alarms(model, severity, n_reports, None, k=k, h=h)
    gain = model.gain if known == "scale" else 1.0
    assumed = replace(model, gain=gain, **POPULATION_NOISE)
    counts = [POPULATION_REPORTS if y is not None else 0 for y in severity]
    return informed_alarms(assumed, severity, counts, None, k=k, h=h)
