"""Online conformal prediction intervals around a point forecast.

Split-conformal on a sliding window of the forecaster's own absolute residuals, scored
progressively (each residual is computed before the model learns from its target), with
adaptive conformal inference (Gibbs & Candes, NeurIPS 2021) on top: after every scored
target the working miscoverage ``alpha_t`` moves by ``GAMMA * (ALPHA - miss)``, so the long-run
coverage tracks ``1 - ALPHA`` even when the residuals drift (a patient entering an episode).
The half-width is the ``ceil((n + 1) (1 - alpha_t)) / n`` empirical quantile of the window.

State: at most ``WINDOW`` residuals (rounded to 1e-3) and a few scalars; pure and
deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

ALPHA = 0.2
"""Target miscoverage: 80% intervals."""
GAMMA = 0.01
WINDOW = 100
MIN_SCORES = 14


@dataclass
class ConformalInterval:
    """Adaptive online conformal interval for one forecaster."""

    scores: list[float] = field(default_factory=list)
    alpha_t: float = ALPHA
    scored: int = 0
    covered: int = 0

    def half_width(self) -> float | None:
        """Current half-width, ``None`` until ``MIN_SCORES`` residuals."""
        n = len(self.scores)
        if n < MIN_SCORES:
            return None
        level = min(max(1.0 - self.alpha_t, 0.0), 1.0)
        rank = min(max(math.ceil((n + 1) * level), 1), n)
        return sorted(self.scores)[rank - 1]

    def interval(self, point: float, lo: float, hi: float) -> tuple[float, float] | None:
        """``[point - q, point + q]`` clipped to ``[lo, hi]``, or ``None`` while warming up."""
        q = self.half_width()
        if q is None:
            return None
        return max(point - q, lo), min(point + q, hi)

    def update(
        self, y: float, point: float, interval: tuple[float, float] | None, *, gamma: float = GAMMA
    ) -> None:
        """Score the standing interval against ``y``, then add the residual to the window;
        ``gamma`` is the step of the working miscoverage (a model version may change it)."""
        if interval is not None:
            miss = not interval[0] <= y <= interval[1]
            self.scored += 1
            self.covered += not miss
            self.alpha_t = min(max(self.alpha_t + gamma * (ALPHA - miss), 0.0), 1.0)
        self.scores = [*self.scores, round(abs(y - point), 3)][-WINDOW:]

    @property
    def coverage(self) -> float | None:
        """Share of scored targets that fell inside their interval."""
        return self.covered / self.scored if self.scored else None
