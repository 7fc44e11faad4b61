"""Time-based split: exact boundaries, embargo gaps, no leakage, clear refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novamind.app.datasets.exceptions import BadExportParameters
from novamind.app.datasets.split import SplitPlan, assign, plan_by_shares

D = dt.date(2026, 1, 1)
ROLLING_WINDOW = 7


def day(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


def test_boundaries_are_exact() -> None:
    plan = SplitPlan(validation_from=day(70), test_from=day(85), gap_days=7)
    assert plan.split_of(day(69)) == "train"
    assert [plan.split_of(day(n)) for n in range(70, 77)] == [None] * 7
    assert plan.split_of(day(77)) == "validation"
    assert plan.split_of(day(84)) == "validation"
    assert [plan.split_of(day(n)) for n in range(85, 92)] == [None] * 7
    assert plan.split_of(day(92)) == "test"


def test_shares_place_the_boundaries_on_the_real_span() -> None:
    plan = plan_by_shares(day(0), day(99), train_share=0.7, validation_share=0.15, gap_days=7)
    assert (plan.validation_from, plan.test_from, plan.gap_days) == (day(70), day(85), 7)


def test_a_split_without_days_is_refused_with_the_reason() -> None:
    with pytest.raises(BadExportParameters, match=r"spans 14 days.*7-day gap"):
        plan_by_shares(day(0), day(13), train_share=0.7, validation_share=0.15, gap_days=7)
    with pytest.raises(BadExportParameters, match="validation window is empty"):
        SplitPlan(validation_from=day(10), test_from=day(15), gap_days=7)
    with pytest.raises(BadExportParameters, match="sum to less than 1"):
        plan_by_shares(day(0), day(99), train_share=0.9, validation_share=0.1)


def test_embargoed_days_are_counted() -> None:
    days = [("p_a", day(n)) for n in range(100)]
    out, embargoed = assign(days, SplitPlan(validation_from=day(70), test_from=day(85), gap_days=7))
    assert [len(out[s]) for s in ("train", "validation", "test")] == [70, 8, 8]
    assert embargoed == 14


@settings(max_examples=200, deadline=None)
@given(
    patients=st.lists(
        st.tuples(st.integers(0, 60), st.integers(1, 120)), min_size=1, max_size=6
    ),  # (first day, length) per patient
    train=st.floats(0.3, 0.8),
    validation=st.floats(0.05, 0.19),
    gap=st.integers(6, 10),
)
def test_no_leakage_across_boundaries(
    patients: list[tuple[int, int]], train: float, validation: float, gap: int
) -> None:
    days = [(f"p_{i}", day(first + k)) for i, (first, length) in enumerate(patients) for k in range(length)]
    first, last = min(d for _, d in days), max(d for _, d in days)
    try:
        plan = plan_by_shares(first, last, train_share=train, validation_share=validation, gap_days=gap)
    except BadExportParameters:
        return  # a span too short for these shares is refused, never split with leakage
    out, embargoed = assign(days, plan)
    assert sum(map(len, out.values())) + embargoed == len(days)
    order = ("train", "validation", "test")
    for earlier, later in (("train", "validation"), ("validation", "test"), ("train", "test")):
        earlier_days = {d for _, d in out[earlier]}
        for _, d in out[later]:
            # Every earlier day lies more than the gap before every later day, so a later row's
            # 7-day rolling window (d-6..d) and an earlier row's next-day label never cross.
            assert all((d - e).days > gap for e in earlier_days)
            window = {d - dt.timedelta(days=k) for k in range(ROLLING_WINDOW)}
            assert not window & earlier_days
    # Per patient, each split is one window inside that split's interval (no straddling).
    intervals = {
        "train": (dt.date.min, plan.validation_from),
        "validation": (plan.validation_from + dt.timedelta(days=gap), plan.test_from),
        "test": (plan.test_from + dt.timedelta(days=gap), dt.date.max),
    }
    for name in order:
        low, high = intervals[name]
        assert all(low <= d <= high for _, d in out[name])
        assert name == "test" or all(d != high for _, d in out[name])
