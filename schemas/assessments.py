"""PHQ-9, GAD-7 and PHQ-9 item-9 screen scoring: pure functions, no I/O.

PHQ-9: 9 items 0-3, total 0-27; bands 0-4 minimal, 5-9 mild, 10-14 moderate,
15-19 moderately severe, 20-27 severe; item 9 >= 1 is a safety signal whatever the total.
GAD-7: 7 items 0-3, total 0-21; bands 0-4 minimal, 5-9 mild, 10-14 moderate, 15-21 severe.
PHQ9_ITEM9: PHQ-9 item 9 (LOINC 44260-8, thoughts that you would be better off dead or of
hurting yourself) answered on its own, as EHRs and screening apps record it: 1 item 0-3, the
"total" is that answer (not a PHQ-9 total), no severity band (``UNKNOWN``), and an answer
>= 1 is the same safety signal as in a full PHQ-9.

>>> score_items(Instrument.PHQ9, [1, 1, 1, 1, 1, 0, 0, 0, 1])
Score(total=6, band=<Band.MILD: 'MILD'>, item9_positive=True, loinc_total='44261-6')
>>> score_items(Instrument.PHQ9_ITEM9, [2])
Score(total=2, band=<Band.UNKNOWN: 'UNKNOWN'>, item9_positive=True, loinc_total='44260-8')
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.exceptions import ItemCountError, ItemRangeError, UnknownInstrument
from schemas.models import AssessmentResult, AssessmentSubmission, Band, Instrument

PHQ9_PANEL_LOINC = "44249-1"
PHQ9_TOTAL_LOINC = "44261-6"
PHQ9_ITEM9_LOINC = "44260-8"  # the item-9 question, also the code of a PHQ9_ITEM9 "total"
PHQ2_TOTAL_LOINC = "55758-7"
GAD7_PANEL_LOINC = "69737-5"
GAD7_TOTAL_LOINC = "70274-6"
ITEM_MIN, ITEM_MAX = 0, 3
RESULT_NAMESPACE = uuid.UUID("6f1c1b52-3c4e-5b8a-9d57-2f0e8a1c4b10")


@dataclass(frozen=True)
class InstrumentSpec:
    """Item count, LOINC codes, band lower bounds (ascending; none for a single-item screen)
    and the position of PHQ-9 item 9 (thoughts of self-harm) among the items, when asked."""

    items: int
    panel_loinc: str | None  # None: answered on its own, not as a panel
    total_loinc: str
    bands: tuple[tuple[int, Band], ...]
    item9_index: int | None = None

    @property
    def max_total(self) -> int:
        return self.items * ITEM_MAX

    @property
    def banded(self) -> bool:
        """Whether the total is a questionnaire score with severity bands (PHQ-9, GAD-7)."""
        return bool(self.bands)


INSTRUMENTS: dict[Instrument, InstrumentSpec] = {
    Instrument.PHQ9: InstrumentSpec(
        items=9,
        panel_loinc=PHQ9_PANEL_LOINC,
        total_loinc=PHQ9_TOTAL_LOINC,
        bands=(
            (0, Band.MINIMAL),
            (5, Band.MILD),
            (10, Band.MODERATE),
            (15, Band.MODERATELY_SEVERE),
            (20, Band.SEVERE),
        ),
        item9_index=8,
    ),
    Instrument.GAD7: InstrumentSpec(
        items=7,
        panel_loinc=GAD7_PANEL_LOINC,
        total_loinc=GAD7_TOTAL_LOINC,
        bands=((0, Band.MINIMAL), (5, Band.MILD), (10, Band.MODERATE), (15, Band.SEVERE)),
    ),
    Instrument.PHQ9_ITEM9: InstrumentSpec(
        items=1,
        panel_loinc=None,
        total_loinc=PHQ9_ITEM9_LOINC,
        bands=(),
        item9_index=0,
    ),
}


@dataclass(frozen=True)
class Score:
    """Outcome of scoring one questionnaire."""

    total: int
    band: Band
    item9_positive: bool
    loinc_total: str


def instrument_spec(instrument: Instrument | str) -> InstrumentSpec:
    """Spec of a scorable instrument; :class:`UnknownInstrument` otherwise."""
    try:
        return INSTRUMENTS[Instrument(instrument)]
    except (KeyError, ValueError):
        raise UnknownInstrument(f"instrument {instrument!s:.20} cannot be scored") from None


def band_for(instrument: Instrument | str, total: int) -> Band:
    """Severity band of ``total`` (``UNKNOWN`` for an unbanded screen); :class:`ItemRangeError`
    when outside 0..max."""
    spec = instrument_spec(instrument)
    if not 0 <= total <= spec.max_total:
        raise ItemRangeError(f"{instrument} total must be 0-{spec.max_total}, got {total}")
    if not spec.banded:
        return Band.UNKNOWN
    return next(band for lower, band in reversed(spec.bands) if total >= lower)


def score_items(instrument: Instrument | str, responses: Sequence[int]) -> Score:
    """Validate the item answers and score them."""
    spec = instrument_spec(instrument)
    if len(responses) != spec.items:
        raise ItemCountError(f"{instrument} needs {spec.items} items, got {len(responses)}")
    for position, answer in enumerate(responses, start=1):
        if isinstance(answer, bool) or not isinstance(answer, int):
            raise ItemRangeError(f"{instrument} item {position} must be an integer 0-3")
        if not ITEM_MIN <= answer <= ITEM_MAX:
            raise ItemRangeError(f"{instrument} item {position} must be 0-3, got {answer}")
    total = sum(responses)
    return Score(
        total=total,
        band=band_for(instrument, total),
        item9_positive=spec.item9_index is not None and responses[spec.item9_index] >= 1,
        loinc_total=spec.total_loinc,
    )


def score_assessment(submission: AssessmentSubmission) -> AssessmentResult:
    """Score a submission; the result keeps its envelope and gets a deterministic event id."""
    score = score_items(submission.instrument, submission.item_responses)
    return AssessmentResult(
        event_id=str(uuid.uuid5(RESULT_NAMESPACE, f"assessment-result:{submission.event_id}")),
        patient_id=submission.patient_id,
        event_time=submission.event_time,
        received_time=submission.received_time,
        source=submission.source,
        submission_id=submission.submission_id,
        instrument=submission.instrument,
        item_responses=list(submission.item_responses),
        total=score.total,
        band=score.band,
        item9_positive=score.item9_positive,
        loinc_total=score.loinc_total,
    )
