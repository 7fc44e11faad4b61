"""Bodies patients' apps POST. Strict: unknown fields, wrong types, future times and times the
pipeline would no longer count are refused.

Validate with ``Model.model_validate_json(raw, context=ValidationContext(...))`` so that
``event_time`` is checked against the injected clock. Without a context the time checks are
skipped (the JSON schema cannot express them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from schemas.assessments import INSTRUMENTS
from schemas.models import REPORTED_SYMPTOM_TYPES, Instrument

if TYPE_CHECKING:
    SymptomTypeName = str
else:  # the symbols of schemas.models.SymptomType a report may name (the OpenAPI enum too)
    SymptomTypeName = Literal[REPORTED_SYMPTOM_TYPES]
# Not PHQ9_ITEM9: that single-item screen is how EHRs record item 9 alone (the FHIR connector
# maps it); a patient app asks the whole PHQ-9, whose item 9 raises the same safety alert.
InstrumentName = Literal["PHQ9", "GAD7"]
SubmissionId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Client-chosen id of this submission; a retry must reuse it.",
    ),
]
Label = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9 _-]+$")]
EventTime = Annotated[
    AwareDatetime,
    Field(
        description="When it happened: ISO 8601 with a UTC offset, not in the future and not older "
        "than the pipeline's lateness horizon (30 days by default)."
    ),
]


@dataclass(frozen=True)
class ValidationContext:
    """Passed as pydantic context: the current time, the tolerated clock skew and the horizon.

    ``horizon`` is the workers' lateness (``NOVAMIND_WORKER__LATENESS_DAYS``): a stream's
    watermark may stand at ``now + max_skew``, so an event older than ``now + max_skew -
    horizon`` could be dead-lettered as late; the intake refuses it instead of claiming 201.
    """

    now: dt.datetime
    max_skew: dt.timedelta
    horizon: dt.timedelta | None = None


def _within_horizon(value: dt.datetime, info: ValidationInfo) -> dt.datetime:
    ctx = info.context
    if isinstance(ctx, ValidationContext):
        if value > ctx.now + ctx.max_skew:
            raise PydanticCustomError(
                "future_timestamp",
                "event_time is in the future (more than {skew_s} s ahead of the server clock)",
                {"skew_s": int(ctx.max_skew.total_seconds())},
            )
        if ctx.horizon is not None and value < ctx.now + ctx.max_skew - ctx.horizon:
            raise PydanticCustomError(
                "too_old",
                "event_time is more than {days} days old: the pipeline no longer counts it",
                {"days": ctx.horizon.days},
            )
    return value.astimezone(dt.UTC)


class IntakeRequest(BaseModel):
    """Common base: frozen, strict types, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    submission_id: SubmissionId
    event_time: EventTime

    @field_validator("event_time")
    @classmethod
    def _check_time(cls, value: dt.datetime, info: ValidationInfo) -> dt.datetime:
        return _within_horizon(value, info)


class SymptomReportRequest(IntakeRequest):
    """A self-reported symptom; ``notes`` is free text and is encrypted before it leaves."""

    model_config = ConfigDict(title="SymptomReportRequest")

    symptom_type: SymptomTypeName
    severity: Annotated[int, Field(ge=0, le=10, description="0 none .. 10 worst")]
    context: Label | None = Field(default=None, description="Short category, e.g. 'work'.")
    triggers: list[Label] = Field(default_factory=list, max_length=20)
    notes: str | None = Field(
        default=None, min_length=1, max_length=4000, description="Free text (field-encrypted)."
    )


class AssessmentRequest(IntakeRequest):
    """A completed PHQ-9 (9 items) or GAD-7 (7 items) questionnaire, each item 0-3."""

    model_config = ConfigDict(title="AssessmentRequest")

    instrument: InstrumentName
    item_responses: list[Annotated[int, Field(ge=0, le=3)]] = Field(
        max_length=64, description="Item answers in order: 9 for PHQ9, 7 for GAD7."
    )

    @field_validator("item_responses")
    @classmethod
    def _item_count(cls, value: list[int], info: ValidationInfo) -> list[int]:
        instrument = info.data.get("instrument")
        if instrument is None:  # the instrument itself was invalid; reported there
            return value
        expected = INSTRUMENTS[Instrument(instrument)].items
        if len(value) != expected:
            raise PydanticCustomError(
                "item_count",
                "{instrument} needs exactly {expected} item responses, got {actual}",
                {"instrument": instrument, "expected": expected, "actual": len(value)},
            )
        return value
