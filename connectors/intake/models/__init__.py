"""Request and response bodies of the intake API (their JSON schema feeds the OpenAPI document)."""

from connectors.intake.models.requests import (
    AssessmentRequest,
    SymptomReportRequest,
    ValidationContext,
)
from connectors.intake.models.responses import (
    AssessmentAccepted,
    ErrorBody,
    ErrorItem,
    SymptomReportAccepted,
)

__all__ = [
    "AssessmentAccepted",
    "AssessmentRequest",
    "ErrorBody",
    "ErrorItem",
    "SymptomReportAccepted",
    "SymptomReportRequest",
    "ValidationContext",
]
