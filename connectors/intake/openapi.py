"""The OpenAPI 3.1 document, derived from the pydantic models' JSON schema (2020-12)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from connectors.intake.models import (
    AssessmentAccepted,
    AssessmentRequest,
    ErrorBody,
    SymptomReportAccepted,
    SymptomReportRequest,
)

SYMPTOM_REPORTS_PATH = "/v1/patients/{patient_id}/symptom-reports"
ASSESSMENTS_PATH = "/v1/patients/{patient_id}/assessments"
_REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    described = {
        400: "Body is not valid JSON.",
        401: "Missing or unknown bearer token (see WWW-Authenticate).",
        403: "The token may not submit for this patient, or lacks patient/Observation.write.",
        409: "submission_id already used with a different body.",
        413: "Body too large.",
        415: "Body is not application/json.",
        422: "Validation failed (including an event_time older than the pipeline's lateness "
        "horizon); each error names its field path.",
        429: "Too many requests for this token; retry after Retry-After seconds.",
        503: "Kafka did not acknowledge: nothing was accepted; retry after Retry-After.",
    }
    return {str(status): _json(ErrorBody, described[status]) for status in statuses}


def _submission(
    summary: str, request: type[BaseModel], accepted: type[BaseModel], operation_id: str
) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "description": (
                "Answered only after Kafka acknowledged the event. Idempotent by "
                "submission_id: a retry gets 200 with the first answer and the same event_id."
            ),
            "security": [{"bearer": []}],
            "parameters": [{
                "name": "patient_id",
                "in": "path",
                "required": True,
                "description": "Patient pseudonym the token belongs to.",
                "schema": {"type": "string", "pattern": "^p_[0-9a-f]{32}$"},
            }],
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": _ref(request)}}},
            "responses": {
                "201": _json(accepted, "Accepted and acknowledged by Kafka."),
                "200": _json(accepted, "Repeat of an already acknowledged submission."),
                **_errors(400, 401, 403, 409, 413, 415, 422, 429, 503),
            },
        }
    }


def openapi_document() -> dict[str, Any]:
    """The whole document, built from the request and response models."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (SymptomReportRequest, "validation"),
        (AssessmentRequest, "validation"),
        (SymptomReportAccepted, "serialization"),
        (AssessmentAccepted, "serialization"),
        (ErrorBody, "serialization"),
    ]
    _, schema = models_json_schema(models, ref_template=_REF)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "NOVAMIND patient-reporting intake",
            "version": "1.0.0",
            "description": "Symptom reports and PHQ-9/GAD-7 questionnaires from patients' apps.",
        },
        "paths": {
            SYMPTOM_REPORTS_PATH: _submission("Submit a symptom report", SymptomReportRequest,
                                              SymptomReportAccepted, "submitSymptomReport"),
            ASSESSMENTS_PATH: _submission("Submit a PHQ-9 or GAD-7 questionnaire",
                                          AssessmentRequest, AssessmentAccepted,
                                          "submitAssessment"),
            "/healthz": {"get": {"operationId": "health", "summary": "Liveness",
                                 "responses": {"200": {"description": "Serving."}}}},
        },
        "components": {
            "schemas": schema.get("$defs", {}),
            "securitySchemes": {"bearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": (
                    "An access token of the organisation's identity provider (RS256/ES256) with "
                    "the scope patient/Observation.write and a patient claim naming the patient "
                    "of the path; development deployments may use static tokens instead."
                ),
            }},
        },
    }
