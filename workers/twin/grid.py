"""The point forecast that minimises absolute error on the grid the day's mean severity lies on.

A day's mean symptom severity is the mean of that day's integer 0-10 reports, so it lies on a
grid: whole points on a day with one report, halves with two, thirds with three. The MAE of a
point forecast is smallest at the median of the outcome's distribution, and when the outcome
is confined to a grid, that median is usually a grid point, not the mean the twin's ensemble
estimates. Publishing the median instead of the mean cut the severity MAE by 0.4% on the
bench's project cohort and 1.4% on its trajectory cohort (tuning draws 41 and 45, README "Twin
fidelity").

The outcome's distribution is a mixture: with weight ``share[k]`` (how often the patient's
recent days had a mean on the 1/k grid and no coarser one) a normal around the ensemble's
forecast rounded to the 1/k grid, with the rest of the weight the normal itself (values on no
grid, or while the shares are still learning). Its median is found exactly by walking the
atoms in order. Pure functions; no state.

>>> median_on_grid(4.3, {1: 1.0}, sigma=0.8)
4.0
>>> median_on_grid(4.3, {}, sigma=0.8)
4.3
"""

from __future__ import annotations

import math
from statistics import NormalDist

GRID_REPORTS = (1, 2, 3, 4)
"""Reports a day whose means have a grid of their own (more reports: the grid is fine enough
to treat as continuous)."""
ALPHA_GRID = 0.05
"""Weight of a new day in the patient's grid shares (about the last 20 reported days)."""
MIN_SIGMA = 0.2
"""Floor of the spread of the outcome around the forecast (severity points)."""
TAIL_SDS = 4.0
"""Atoms farther than this many spreads from the forecast are left out (mass < 1e-4)."""
SEVERITY_MIN, SEVERITY_MAX = 0.0, 10.0

_NORMAL = NormalDist()


def grid_of(value: float) -> int | None:
    """The coarsest grid of ``GRID_REPORTS`` that ``value`` lies on (``1`` for whole numbers).

    >>> grid_of(3.0), grid_of(3.5), grid_of(10 / 3), grid_of(3.25), grid_of(3.1)
    (1, 2, 3, 4, None)
    """
    for k in GRID_REPORTS:
        if abs(value * k - round(value * k)) < 1e-6:
            return k
    return None


def learn_shares(shares: dict[int, float], value: float, alpha: float = ALPHA_GRID) -> dict[int, float]:
    """The grid shares after a day with mean severity ``value`` (a new dict; exponentially
    weighted frequency of each grid, starting from zero)."""
    k = grid_of(value)
    return {
        g: shares.get(g, 0.0) + alpha * ((1.0 if g == k else 0.0) - shares.get(g, 0.0)) for g in GRID_REPORTS
    }


def _atoms(centre: float, shares: dict[int, float], sigma: float) -> list[tuple[float, float]]:
    """``(grid point, probability)`` of the rounded components near ``centre``; the tails
    beyond the scale's ends pile onto its ends."""
    atoms: list[tuple[float, float]] = []
    for k, weight in shares.items():
        if weight <= 0.0:
            continue
        first = max(math.floor((centre - TAIL_SDS * sigma) * k), round(SEVERITY_MIN * k))
        last = min(math.ceil((centre + TAIL_SDS * sigma) * k), round(SEVERITY_MAX * k))
        for j in range(first, last + 1):
            point = j / k
            lower = 0.0 if j == first else _NORMAL.cdf((point - 0.5 / k - centre) / sigma)
            upper = 1.0 if j == last else _NORMAL.cdf((point + 0.5 / k - centre) / sigma)
            atoms.append((point, weight * (upper - lower)))
    return sorted(atoms)


def median_on_grid(centre: float, shares: dict[int, float], sigma: float) -> float:
    """Median of the mixture around ``centre`` (the ensemble's forecast) with spread
    ``sigma``: the MAE-optimal point forecast. ``centre`` itself when no grid has weight."""
    sigma = max(sigma, MIN_SIGMA)
    continuous = max(0.0, 1.0 - sum(w for w in shares.values() if w > 0.0))
    below = 0.0  # probability of the atoms passed so far
    previous = -math.inf
    for point, mass in _atoms(centre, shares, sigma):
        if continuous > 0.0:
            # does the continuous part alone carry the CDF to 1/2 before this atom?
            need = (0.5 - below) / continuous
            if 0.0 < need < 1.0:
                crossing = centre + sigma * _NORMAL.inv_cdf(need)
                if previous < crossing < point:
                    return crossing
        below += mass
        if below + continuous * _NORMAL.cdf((point - centre) / sigma) >= 0.5:
            return point
        previous = point
    need = (0.5 - below) / continuous if continuous > 0.0 else 0.0
    return centre + sigma * _NORMAL.inv_cdf(need) if 0.0 < need < 1.0 else centre
