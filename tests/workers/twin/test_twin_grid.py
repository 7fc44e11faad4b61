"""The published severity forecast: the median on the patient's report grid."""

from __future__ import annotations

import copy
import random
from statistics import fmean

import pytest

from workers.twin.forecast import SeverityForecaster
from workers.twin.grid import GRID_REPORTS, grid_of, learn_shares, median_on_grid


def _sample(centre: float, shares: dict[int, float], sigma: float, rng: random.Random) -> float:
    """One outcome of the mixture ``median_on_grid`` assumes."""
    value = min(max(rng.gauss(centre, sigma), 0.0), 10.0)
    pick, cumulative = rng.random(), 0.0
    for k, weight in sorted(shares.items()):
        cumulative += weight
        if pick < cumulative:
            return min(max(round(value * k) / k, 0.0), 10.0)
    return value


def test_grid_of_names_the_coarsest_grid():
    assert [grid_of(v) for v in (0.0, 7.0, 6.5, 4 / 3, 2.75, 2.2)] == [1, 1, 2, 3, 4, None]


def test_shares_learn_from_zero_and_a_value_on_no_grid_decays_them():
    shares = learn_shares({}, 3.0)
    assert shares == {1: pytest.approx(0.05), 2: 0.0, 3: 0.0, 4: 0.0}
    for _ in range(200):
        shares = learn_shares(shares, 3.0)
    assert shares[1] > 0.99 and set(shares) == set(GRID_REPORTS)
    for _ in range(200):
        shares = learn_shares(shares, 3.1)
    assert sum(shares.values()) < 0.01


def test_without_grid_weight_the_mean_is_published():
    assert median_on_grid(4.37, {}, 0.8) == 4.37
    assert median_on_grid(4.37, {1: 0.0, 2: 0.0}, 0.8) == 4.37


def test_whole_number_reports_give_a_whole_number_and_the_ends_hold():
    assert median_on_grid(4.3, {1: 1.0}, 0.8) == 4.0
    assert median_on_grid(4.7, {1: 1.0}, 0.8) == 5.0
    assert median_on_grid(4.3, {2: 1.0}, 0.8) == 4.5
    assert median_on_grid(9.9, {1: 1.0}, 0.8) == 10.0
    assert median_on_grid(0.2, {1: 1.0}, 0.8) == 0.0


@pytest.mark.parametrize(
    ("centre", "shares", "sigma"),
    [
        (4.3, {1: 0.6, 2: 0.3}, 0.9),
        (2.6, {1: 0.3, 3: 0.3}, 0.5),
        (7.45, {2: 0.5}, 1.2),
        (1.1, {1: 0.9}, 0.6),
        (5.2, {1: 0.2, 2: 0.2, 3: 0.2, 4: 0.2}, 0.3),
    ],
)
def test_the_published_point_has_the_smallest_absolute_error_of_the_points_near_it(centre, shares, sigma):
    rng = random.Random(7)
    outcomes = [_sample(centre, shares, sigma, rng) for _ in range(20_000)]
    best = median_on_grid(centre, shares, sigma)

    def loss(point: float) -> float:
        return fmean(abs(point - y) for y in outcomes)

    others = [centre, round(centre), round(centre * 2) / 2, round(centre * 3) / 3, best - 0.1, best + 0.1]
    assert all(loss(best) <= loss(o) + 0.002 for o in others)
    # and it is the sample's median, up to sampling error
    ordered = sorted(outcomes)
    assert ordered[len(ordered) // 2 - 300] <= best <= ordered[len(ordered) // 2 + 300]


def test_the_forecaster_publishes_on_the_grid_and_beats_its_own_mean_on_whole_number_reports():
    rng = random.Random(3)
    forecaster = SeverityForecaster()
    published, mean = [], []
    unsnapped = None
    for day in range(300):
        y = float(min(max(round(rng.gauss(5.0, 0.6) + (1.0 if day % 50 > 40 else 0.0)), 0), 10))
        if forecaster.pending_day == day and unsnapped is not None:
            published.append(abs(forecaster.pending["published"] - y))
            mean.append(abs(unsnapped - y))
        forecaster.score_and_learn(day, y)
        without_grid = copy.deepcopy(forecaster)
        without_grid.grid_share = {}
        unsnapped = without_grid.forecast(day, {}, prior_mean=5.0, personal=day > 14)
        forecaster.forecast(day, {}, prior_mean=5.0, personal=day > 14)
    assert forecaster.grid_share[1] > 0.99
    assert float(forecaster.pending["published"]).is_integer()
    assert fmean(published[30:]) < fmean(mean[30:])
