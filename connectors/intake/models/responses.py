"""Bodies the intake answers with."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.models import Band, Instrument


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SymptomReportAccepted(_Body):
    """Kafka acknowledged the symptom report."""

    event_id: str = Field(description="Deterministic: the same for every retry of a submission.")
    submission_id: str


class AssessmentAccepted(_Body):
    """Kafka acknowledged the scored questionnaire."""

    event_id: str = Field(description="Deterministic: the same for every retry of a submission.")
    submission_id: str
    instrument: Instrument
    total: int
    band: Band
    item9_positive: bool = Field(description="PHQ-9 item 9 >= 1: safety follow-up is raised.")
    loinc_total: str


class ErrorItem(_Body):
    """One problem; ``path`` is dotted (``item_responses.3``), empty for the whole body."""

    path: str
    message: str
    type: str


class ErrorBody(_Body):
    """Every 4xx/5xx answer."""

    errors: list[ErrorItem]
