"""Pure builders: validated requests -> contract records; audit events for each decision."""

from __future__ import annotations

import datetime as dt
import uuid

from connectors.intake.models.requests import AssessmentRequest, SymptomReportRequest
from connectors.intake.ports import TextEncryptor
from novamind.platform.privacy.fieldcrypt import field_context
from schemas.assessments import score_assessment
from schemas.models import (
    AssessmentResult,
    AssessmentSubmission,
    AuditAction,
    AuditEvent,
    AuditOutcome,
    Instrument,
    SymptomReport,
    SymptomType,
)

SOURCE = "intake"
AUDIT_PURPOSE = "TREATMENT"


def symptom_report(
    request: SymptomReportRequest,
    *,
    patient_id: str,
    event_id: str,
    received_time: dt.datetime,
    encryptor: TextEncryptor,
) -> SymptomReport:
    """The contract record; ``notes`` leaves this function only encrypted."""
    return SymptomReport(
        event_id=event_id,
        patient_id=patient_id,
        event_time=request.event_time,
        received_time=received_time,
        source=SOURCE,
        symptom_type=SymptomType(request.symptom_type),
        severity=request.severity,
        context=request.context,
        triggers=list(request.triggers),
        notes=(
            encryptor.encrypt(request.notes,
                              context=field_context(patient_id, SymptomReport.__name__, "notes"))
            if request.notes else None
        ),
    )


def assessment_result(
    request: AssessmentRequest, *, patient_id: str, event_id: str, received_time: dt.datetime
) -> AssessmentResult:
    """Score the questionnaire (``schemas.assessments``) into an AssessmentResult."""
    submission = AssessmentSubmission(
        event_id=event_id,
        patient_id=patient_id,
        event_time=request.event_time,
        received_time=received_time,
        source=SOURCE,
        submission_id=request.submission_id,
        instrument=Instrument(request.instrument),
        item_responses=list(request.item_responses),
    )
    return score_assessment(submission)


def audit_event(
    *,
    actor: str,
    patient_id: str | None,
    outcome: AuditOutcome,
    resource: str,
    now: dt.datetime,
    details: dict[str, str],
) -> AuditEvent:
    """One COLLECT decision for TREATMENT; ``details`` carry codes and ids, never free text."""
    return AuditEvent(
        event_id=str(uuid.uuid4()),
        event_time=now,
        actor=actor,
        action=AuditAction.COLLECT,
        patient_id=patient_id,
        purpose=AUDIT_PURPOSE,
        resource=resource,
        outcome=outcome,
        details=details,
    )
