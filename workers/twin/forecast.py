"""Online forecasters of next-day symptom severity and of the next PHQ-9 total.

Both follow river's predict-then-learn protocol (progressive validation): a forecast is
stored when made, scored when its target arrives, and only then does the model learn, so
each carries an honest running MAE next to a last-value persistence baseline.

The severity forecaster is a small ensemble whose members are weighted by the inverse 16th
power of their exponentially weighted absolute error (a smooth follow-the-leader):

* ``persistence`` - last observed value (also kept as the honesty baseline);
* ``ew_fast`` / ``ew_slow`` - exponentially weighted means (slow = personal mean);
* ``linear`` - ``ew_fast`` plus a river ``StandardScaler`` then
  ``BayesianLinearRegression`` (closed-form online Bayesian ridge, prior precision 10) on
  the residual, fed with the deviation from the fast mean, trend, sleep, resting HR, HRV,
  steps and medication exposure (~2 KB pickled). The closed form converges within weeks
  where SGD ``LinearRegression`` needed months and was 1-2 % worse in MAE on the bench
  cohort. Scaler and regressor are held separately rather than in a river ``Pipeline`` so
  the state pickles without shared references.

Until the patient is PERSONAL the published forecast is shrunk toward a population prior.
The ensemble estimates a mean; the published forecast is the median of the outcome around it
on the grid the patient's daily means lie on (:mod:`workers.twin.grid`), which is what a
smaller absolute error asks for. Around the ensemble's mean (whose residuals are not confined
to the grid), widened where needed to hold the published point, an 80% online conformal interval
(:mod:`workers.twin.conformal`) is kept in ``pending_interval`` and scored like the forecast.

The tunable constants below are gathered in :class:`ForecastParams` (``DEFAULT_PARAMS`` holds
them as they are), which the methods take as an argument: a model version
(:mod:`workers.twin.versions`) may run with other values, e.g. in shadow beside the live one.
The parameters are not part of the state, so a state learned under one version continues
under another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from river import linear_model, preprocessing

from workers.twin import conformal, grid
from workers.twin.conformal import ConformalInterval

SEVERITY_MAX = 10.0
PHQ9_MAX = 27.0
EXPERTS = ("persistence", "ew_fast", "ew_slow", "linear")
ALPHA_FAST = 0.35
ALPHA_MID = 0.15
ALPHA_SLOW = 0.04
ALPHA_ERR = 0.02
LINEAR_WARMUP = 14
PRIOR_WEIGHT = 3.0
POWER = 16
MEDIAN_SPREAD = 1.25
"""The outcome's SD around the forecast, as a multiple of the published forecast's MAE (a
normal's SD is 1.25 times its mean absolute deviation)."""
MEDIAN_SPREAD_PRIOR = 0.8
"""The MAE assumed before the first scored forecast (about the bench's population MAE)."""


class ForecastParams(NamedTuple):
    """The severity forecaster's tunable parameters (no defaults: see ``DEFAULT_PARAMS``).

    A named tuple, not a dataclass: it is no part of the state tree (nothing of it is stored).
    """

    alpha_fast: float
    alpha_mid: float
    alpha_slow: float
    alpha_err: float
    linear_warmup: int
    prior_weight: float
    power: float
    conformal_gamma: float


DEFAULT_PARAMS = ForecastParams(
    alpha_fast=ALPHA_FAST,
    alpha_mid=ALPHA_MID,
    alpha_slow=ALPHA_SLOW,
    alpha_err=ALPHA_ERR,
    linear_warmup=LINEAR_WARMUP,
    prior_weight=PRIOR_WEIGHT,
    power=POWER,
    conformal_gamma=conformal.GAMMA,
)
"""The parameters of this build (the module constants)."""


def _clip(value: float, hi: float) -> float:
    return min(max(value, 0.0), hi)


def _ew(old: float | None, value: float, alpha: float) -> float:
    return value if old is None else old + alpha * (value - old)


def published_point(centre: float, grid_share: dict[int, float], mae: float | None) -> float:
    """The forecast to publish for the ensemble's mean ``centre``: the median on the patient's
    report grid (:mod:`workers.twin.grid`), the point of least expected absolute error, with
    the outcome's spread taken from ``mae``, the published forecasts' running MAE."""
    spread = MEDIAN_SPREAD * (mae or MEDIAN_SPREAD_PRIOR)
    return _clip(grid.median_on_grid(centre, grid_share, spread), SEVERITY_MAX)


def _new_linear() -> linear_model.BayesianLinearRegression:
    return linear_model.BayesianLinearRegression(alpha=10.0, beta=1.0)


@dataclass
class RunningMAE:
    """Running mean absolute error."""

    n: int = 0
    total: float = 0.0

    def update(self, y_true: float, y_pred: float) -> None:
        """Add one scored prediction."""
        self.n += 1
        self.total += abs(y_true - y_pred)

    @property
    def mae(self) -> float | None:
        """Mean absolute error, ``None`` before the first score."""
        return self.total / self.n if self.n else None


@dataclass
class SeverityForecaster:
    """Next-day mean symptom severity (0-10) forecaster with progressive validation."""

    last: float | None = None
    ew_fast: float | None = None
    ew_mid: float | None = None
    ew_slow: float | None = None
    n: int = 0
    n_linear: int = 0
    scaler: preprocessing.StandardScaler = field(default_factory=preprocessing.StandardScaler)
    linear: linear_model.BayesianLinearRegression = field(default_factory=_new_linear)
    expert_err: dict[str, float] = field(default_factory=dict)
    pending: dict[str, float] = field(default_factory=dict)
    pending_x: dict[str, float] = field(default_factory=dict)
    pending_day: int | None = None
    pending_interval: list[float] | None = None
    pending_centre: float | None = None  # the ensemble's mean the interval is centred on
    published: RunningMAE = field(default_factory=RunningMAE)
    persistence: RunningMAE = field(default_factory=RunningMAE)
    conformal: ConformalInterval = field(default_factory=ConformalInterval)
    grid_share: dict[int, float] = field(default_factory=dict)

    def score_and_learn(
        self, day: int, y: float | None, *, learn: bool = True, params: ForecastParams = DEFAULT_PARAMS
    ) -> bool:
        """Score yesterday's forecasts against ``y`` and learn from it.

        Returns ``True`` when a forecast was scored. Forecasts are scored only when their
        target day is ``day``; the linear member learns only when ``learn`` is true.
        """
        scored = False
        if y is not None and self.pending_day == day and self.pending:
            for name, pred in self.pending.items():
                if name == "published":
                    continue
                err = abs(y - pred)
                self.expert_err[name] = _ew(self.expert_err.get(name), err, params.alpha_err)
            self.published.update(y, self.pending["published"])
            self.persistence.update(y, self.pending["persistence"])
            iv = self.pending_interval
            centre = self.pending["published"] if self.pending_centre is None else self.pending_centre
            self.conformal.update(y, centre, (iv[0], iv[1]) if iv else None, gamma=params.conformal_gamma)
            scored = True
            if learn and self.pending_x:
                self.scaler.learn_one(self.pending_x)
                target = y - self.pending_x["base"]
                self.linear.learn_one(self.scaler.transform_one(self.pending_x), target)
                self.n_linear += 1
        if y is not None:
            self.last = y
            self.grid_share = grid.learn_shares(self.grid_share, y)
            self.ew_fast = _ew(self.ew_fast, y, params.alpha_fast)
            self.ew_mid = _ew(self.ew_mid, y, params.alpha_mid)
            self.ew_slow = _ew(self.ew_slow, y, params.alpha_slow)
            self.n += 1
        return scored

    def forecast(
        self,
        day: int,
        bio: dict[str, float],
        *,
        prior_mean: float,
        personal: bool,
        params: ForecastParams = DEFAULT_PARAMS,
    ) -> float | None:
        """Forecast day ``day + 1`` and remember the members' predictions for scoring.

        Parameters
        ----------
        day
            Ordinal of the day just observed.
        bio
            Model inputs available today (e.g. ``sleep_total_minutes``, ``exposure``).
        prior_mean
            Population prior mean severity, used while ``personal`` is false.
        personal
            Whether the patient has enough history for personal weights.
        params
            The model version's parameters.
        """
        self.pending, self.pending_x, self.pending_day = {}, {}, None
        self.pending_interval, self.pending_centre = None, None
        if self.last is None or self.ew_fast is None or self.ew_slow is None:
            return None
        x = {
            "base": self.ew_fast,
            "dev": self.last - self.ew_fast,
            "trend": self.ew_fast - self.ew_slow,
        }
        x.update(bio)
        preds = {"persistence": self.last, "ew_fast": self.ew_fast, "ew_slow": self.ew_slow}
        if self.n_linear >= params.linear_warmup:
            delta = self.linear.predict_one(self.scaler.transform_one(x))
            preds["linear"] = _clip(self.ew_fast + delta, SEVERITY_MAX)
        if personal:
            weights = {k: 1.0 / (self.expert_err.get(k, 1.0) + 0.05) ** params.power for k in preds}
            total = sum(weights.values())
            out = sum(preds[k] * weights[k] for k in preds) / total
        else:
            shrink = self.n / (self.n + params.prior_weight)
            out = shrink * self.ew_fast + (1.0 - shrink) * prior_mean
        centre = _clip(out, SEVERITY_MAX)
        out = published_point(centre, self.grid_share, self.published.mae)
        # the interval stays centred on the mean, whose residuals are not confined to the grid
        # (so its coverage does not jump from one grid step to the next), and holds the point
        interval = self.conformal.interval(centre, 0.0, SEVERITY_MAX)
        self.pending_interval = [min(interval[0], out), max(interval[1], out)] if interval else None
        self.pending = {**preds, "published": out}
        self.pending_centre = centre
        self.pending_x = x
        self.pending_day = day + 1
        return out

    @property
    def level(self) -> float | None:
        """Roughly two-week severity level (the PHQ-9 recall window)."""
        return self.ew_mid

    @property
    def recent_level(self) -> float | None:
        """Fast severity level (about the last four reports): what the assessment forecasters
        calibrate against; on the bench it forecasts the next PHQ-9 better than the two-week
        level."""
        return self.ew_fast


@dataclass
class ScoreForecaster:
    """Next assessment total forecaster (PHQ-9 by default), calibrated per patient.

    Predicts ``intercept + slope * level``, where ``level`` is the current daily-severity
    level, from the patient's own paired days (the level on the day of each assessment and
    its total): the slope is a ridge estimate shrunk toward the population ``prior_slope``
    with weight ``prior_weight`` (in squared severity points), the intercept the paired
    days' mean residual shrunk toward 0 by ``intercept_weight`` pseudo-pairs. The first assessments lean on
    the population line ``total = prior_slope * level``, later ones on the patient (a
    compressive rater gets a steeper slope and an offset). A share ``blend`` of the last
    total can be mixed in (0 by default: on 40 bench patients 0.2 raised the MAE). Without
    a level it falls back to the last total. Closed form (Welford co-moments), a few floats.
    """

    max_total: float = PHQ9_MAX
    prior_slope: float = 2.5
    prior_weight: float = 10.0
    intercept_weight: float = 1.0
    blend: float = 0.0
    last_total: float | None = None
    n: int = 0
    mean_x: float = 0.0
    mean_y: float = 0.0
    cxx: float = 0.0
    cxy: float = 0.0
    model: RunningMAE = field(default_factory=RunningMAE)
    persistence: RunningMAE = field(default_factory=RunningMAE)

    def coefficients(self) -> tuple[float, float]:
        """``(intercept, slope)`` of the calibration line."""
        slope = (self.cxy + self.prior_weight * self.prior_slope) / (self.cxx + self.prior_weight)
        intercept = self.n / (self.n + self.intercept_weight) * (self.mean_y - slope * self.mean_x)
        return intercept, slope

    @property
    def slope(self) -> float:
        """Current calibrated slope (total points per severity point)."""
        return self.coefficients()[1]

    def predict(self, level: float | None) -> float | None:
        """Forecast the next total given the current severity ``level``."""
        if level is None:
            return self.last_total
        intercept, slope = self.coefficients()
        calibrated = intercept + slope * level
        if self.last_total is not None:
            calibrated = (1 - self.blend) * calibrated + self.blend * self.last_total
        return _clip(calibrated, self.max_total)

    def observe(self, total: float, level: float | None) -> None:
        """Score the standing forecast against ``total``, then learn the pair from it."""
        pred = self.predict(level)
        if pred is not None and self.last_total is not None:
            self.model.update(total, pred)
            self.persistence.update(total, self.last_total)
        if level is not None:
            self.n += 1
            dx = level - self.mean_x
            self.mean_x += dx / self.n
            dy = total - self.mean_y
            self.mean_y += dy / self.n
            self.cxx += dx * (level - self.mean_x)
            self.cxy += dx * (total - self.mean_y)
        self.last_total = total
