"""PHQ-9 / GAD-7 scoring at every band boundary, item 9, and typed errors."""

from __future__ import annotations

import doctest
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from schemas import assessments
from schemas.assessments import (
    GAD7_TOTAL_LOINC,
    PHQ9_ITEM9_LOINC,
    PHQ9_TOTAL_LOINC,
    band_for,
    instrument_spec,
    score_assessment,
    score_items,
)
from schemas.codec import AvroCodec
from schemas.exceptions import AssessmentError, ItemCountError, ItemRangeError, UnknownInstrument
from schemas.models import AssessmentSubmission, Band, Instrument


def test_doctests() -> None:
    assert doctest.testmod(assessments).failed == 0


def items_for(total: int, count: int, *, item9: int | None = None) -> list[int]:
    """``count`` answers summing to ``total`` (item 9 fixed when given)."""
    items = [0] * count
    remaining = total
    if item9 is not None:
        items[8] = item9
        remaining -= item9
    for i in range(count):
        if item9 is not None and i == 8:
            continue
        items[i] = min(3, remaining)
        remaining -= items[i]
    assert remaining == 0 and sum(items) == total
    return items


PHQ9 = [
    (0, Band.MINIMAL),
    (4, Band.MINIMAL),
    (5, Band.MILD),
    (9, Band.MILD),
    (10, Band.MODERATE),
    (14, Band.MODERATE),
    (15, Band.MODERATELY_SEVERE),
    (19, Band.MODERATELY_SEVERE),
    (20, Band.SEVERE),
    (27, Band.SEVERE),
]
GAD7 = [
    (0, Band.MINIMAL),
    (4, Band.MINIMAL),
    (5, Band.MILD),
    (9, Band.MILD),
    (10, Band.MODERATE),
    (14, Band.MODERATE),
    (15, Band.SEVERE),
    (21, Band.SEVERE),
]


@pytest.mark.parametrize(("total", "band"), PHQ9)
def test_phq9_bands(total: int, band: Band) -> None:
    score = score_items(Instrument.PHQ9, items_for(total, 9, item9=0 if total <= 24 else 3))
    assert (score.total, score.band, score.loinc_total) == (total, band, PHQ9_TOTAL_LOINC)


@pytest.mark.parametrize(("total", "band"), GAD7)
def test_gad7_bands(total: int, band: Band) -> None:
    score = score_items(Instrument.GAD7, items_for(total, 7))
    assert (score.total, score.band, score.loinc_total) == (total, band, GAD7_TOTAL_LOINC)
    assert score.item9_positive is False


@pytest.mark.parametrize("item9", [0, 1, 2, 3])
def test_item9_is_a_safety_signal_whatever_the_total(item9: int) -> None:
    score = score_items(Instrument.PHQ9, [0] * 8 + [item9])
    assert score.item9_positive is (item9 >= 1)
    assert score.band is Band.MINIMAL


def test_gad7_never_flags_item9_even_with_seven_threes() -> None:
    assert score_items("GAD7", [3] * 7).item9_positive is False


@pytest.mark.parametrize(
    ("instrument", "items", "error", "message"),
    [
        (Instrument.PHQ9, [0] * 8, ItemCountError, "needs 9 items, got 8"),
        (Instrument.PHQ9, [0] * 10, ItemCountError, "needs 9 items, got 10"),
        (Instrument.GAD7, [0] * 9, ItemCountError, "needs 7 items, got 9"),
        (Instrument.PHQ9, [0] * 8 + [4], ItemRangeError, "item 9 must be 0-3, got 4"),
        (Instrument.GAD7, [-1] + [0] * 6, ItemRangeError, "item 1 must be 0-3, got -1"),
        (Instrument.GAD7, [True] + [0] * 6, ItemRangeError, "item 1 must be an integer"),
        (Instrument.UNKNOWN, [0] * 9, UnknownInstrument, "cannot be scored"),
        ("PHQ2", [0, 0], UnknownInstrument, "cannot be scored"),
    ],
)
def test_typed_errors(instrument: str, items: list[int], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        score_items(instrument, items)
    assert issubclass(error, AssessmentError)


def test_band_for_rejects_impossible_totals() -> None:
    with pytest.raises(ItemRangeError):
        band_for(Instrument.GAD7, 22)


def test_score_assessment(
    submission_factory: Callable[[Instrument, list[int]], AssessmentSubmission],
) -> None:
    submission = submission_factory(Instrument.PHQ9, [3, 3, 3, 3, 3, 3, 3, 0, 1])
    result = score_assessment(submission)
    assert (result.total, result.band, result.item9_positive) == (22, Band.SEVERE, True)
    assert result.patient_id == submission.patient_id
    assert result.event_time == submission.event_time
    assert result.event_id == score_assessment(submission).event_id != submission.event_id
    assert AvroCodec().decode(AvroCodec().encode(result)) == result


def test_submission_model_rejects_out_of_range_items(
    submission_factory: Callable[[Instrument, list[int]], AssessmentSubmission],
) -> None:
    with pytest.raises(ValidationError) as info:
        submission_factory(Instrument.PHQ9, [0] * 8 + [5])
    assert info.value.errors()[0]["loc"] == ("item_responses", 8)


def test_wrong_count_submission_is_a_scoring_error(
    submission_factory: Callable[[Instrument, list[int]], AssessmentSubmission],
) -> None:
    with pytest.raises(ItemCountError):
        score_assessment(submission_factory(Instrument.GAD7, [1] * 9))


@pytest.mark.parametrize("answer", [0, 1, 2, 3])
def test_item9_screen_scores_the_answer_alone(answer: int) -> None:
    score = score_items(Instrument.PHQ9_ITEM9, [answer])
    assert (score.total, score.band, score.loinc_total) == (answer, Band.UNKNOWN, PHQ9_ITEM9_LOINC)
    assert score.item9_positive is (answer >= 1)
    spec = instrument_spec("PHQ9_ITEM9")
    assert (spec.items, spec.max_total, spec.banded, spec.panel_loinc) == (1, 3, False, None)
    assert instrument_spec(Instrument.PHQ9).banded and instrument_spec(Instrument.GAD7).item9_index is None


@pytest.mark.parametrize(
    ("items", "error", "message"),
    [
        ([], ItemCountError, "needs 1 items, got 0"),
        ([0] * 9, ItemCountError, "needs 1 items, got 9"),
        ([4], ItemRangeError, "item 1 must be 0-3, got 4"),
    ],
)
def test_item9_screen_typed_errors(items: list[int], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        score_items(Instrument.PHQ9_ITEM9, items)
    with pytest.raises(ItemRangeError):
        band_for(Instrument.PHQ9_ITEM9, 4)


def test_score_assessment_of_an_item9_screen(
    submission_factory: Callable[[Instrument, list[int]], AssessmentSubmission],
) -> None:
    result = score_assessment(submission_factory(Instrument.PHQ9_ITEM9, [1]))
    assert (result.instrument, result.total, result.band, result.item9_positive) == (
        Instrument.PHQ9_ITEM9,
        1,
        Band.UNKNOWN,
        True,
    )
    assert result.loinc_total == PHQ9_ITEM9_LOINC and result.schema_version == 2
