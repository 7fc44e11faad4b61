"""Bodies patients' apps POST. Strict: unknown fields, wrong types and future times are refused.

Validate with ``Model.model_validate_json(raw, context=ValidationContext(...))`` so that
``event_time`` is checked against the injected clock. Without a context the future check is
skipped (the JSON schema cannot express it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

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
from schemas.models import Instrument

SymptomTypeName = Literal[
    "DEPRESSED_MOOD",
    "ANXIETY",
    "IRRITABILITY",
    "FATIGUE",
    "INSOMNIA",
    "ANHEDONIA",
    "POOR_CONCENTRATION",
    "PANIC",
    "OTHER",
]
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
    Field(description="When it happened: ISO 8601 with a UTC offset, not in the future."),
]


@dataclass(frozen=True)
class ValidationContext:
    """Passed as pydantic context: the current time and the tolerated clock skew."""

    now: dt.datetime
    max_skew: dt.timedelta


def _not_in_future(value: dt.datetime, info: ValidationInfo) -> dt.datetime:
    ctx = info.context
    if isinstance(ctx, ValidationContext) and value > ctx.now + ctx.max_skew:
        raise PydanticCustomError(
            "future_timestamp",
            "event_time is in the future (more than {skew_s} s ahead of the server clock)",
            {"skew_s": int(ctx.max_skew.total_seconds())},
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
        return _not_in_future(value, info)


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
