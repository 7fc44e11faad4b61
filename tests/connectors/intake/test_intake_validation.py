"""Refused bodies: 422 with exact field paths, 400 for broken JSON; nothing reaches Kafka."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.models import AuditOutcome
from tests.connectors.intake.conftest import Intake, assessment_body, symptom_body


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


@pytest.mark.parametrize(
    ("path", "body", "field", "error_type"),
    [
        ("assessments", assessment_body(item_responses=[1] * 8), "item_responses", "item_count"),
        ("assessments", assessment_body(item_responses=[1] * 10), "item_responses", "item_count"),
        (
            "assessments",
            assessment_body(instrument="GAD7", item_responses=[1] * 9),
            "item_responses",
            "item_count",
        ),
        ("assessments", assessment_body(item_responses=[]), "item_responses", "item_count"),
        ("assessments", _without(assessment_body(), "item_responses"), "item_responses", "missing"),
        (
            "assessments",
            assessment_body(item_responses=[1, 1, 1, 4, 1, 1, 1, 1, 1]),
            "item_responses.3",
            "less_than_equal",
        ),
        (
            "assessments",
            assessment_body(item_responses=[-1, 1, 1, 1, 1, 1, 1, 1, 1]),
            "item_responses.0",
            "greater_than_equal",
        ),
        (
            "assessments",
            assessment_body(item_responses=[1, 1, "2", 1, 1, 1, 1, 1, 1]),
            "item_responses.2",
            "int_type",
        ),
        ("assessments", assessment_body(instrument="PHQ2"), "instrument", "literal_error"),
        ("assessments", assessment_body(instrument="UNKNOWN"), "instrument", "literal_error"),
        # the item-9 screen comes from EHRs; a patient app submits the whole PHQ-9
        (
            "assessments",
            assessment_body(instrument="PHQ9_ITEM9", item_responses=[1]),
            "instrument",
            "literal_error",
        ),
        ("assessments", assessment_body(event_time="2026-03-02T13:00:00Z"), "event_time", "future_timestamp"),
        ("assessments", assessment_body(score=9), "score", "extra_forbidden"),
        ("symptom-reports", symptom_body(severity=11), "severity", "less_than_equal"),
        ("symptom-reports", symptom_body(severity=-1), "severity", "greater_than_equal"),
        ("symptom-reports", symptom_body(severity=5.5), "severity", "int_type"),
        ("symptom-reports", symptom_body(severity="5"), "severity", "int_type"),
        ("symptom-reports", symptom_body(symptom_type="SADNESS"), "symptom_type", "literal_error"),
        (
            "symptom-reports",
            symptom_body(event_time="2026-03-02T12:05:01Z"),
            "event_time",
            "future_timestamp",
        ),
        ("symptom-reports", symptom_body(event_time="2026-03-02T11:00:00"), "event_time", "timezone_aware"),
        ("symptom-reports", symptom_body(event_time="yesterday"), "event_time", "datetime_parsing"),
        ("symptom-reports", _without(symptom_body(), "submission_id"), "submission_id", "missing"),
        ("symptom-reports", symptom_body(submission_id=""), "submission_id", "string_too_short"),
        ("symptom-reports", symptom_body(triggers=["ok", "x" * 65]), "triggers.1", "string_too_long"),
        ("symptom-reports", symptom_body(mood="low"), "mood", "extra_forbidden"),
        ("symptom-reports", ["not", "an", "object"], "", "model_type"),
    ],
)
async def test_invalid_body_is_422_with_the_field_path(
    intake: Intake, path: str, body: Any, field: str, error_type: str
) -> None:
    resp = await intake.post(path, body)

    assert resp.status == 422
    errors = (await resp.json())["errors"]
    assert [(e["path"], e["type"]) for e in errors] == [(field, error_type)]
    assert errors[0]["message"]
    assert intake.producer.sent == []
    [audit] = intake.audit.events
    assert (audit.outcome, audit.details["reason"]) == (AuditOutcome.DENIED, "invalid")


async def test_every_problem_is_listed(intake: Intake) -> None:
    body = assessment_body(
        instrument="PHQ9",
        item_responses=[0, 5, 0, 0, 9, 0, 0, 0, 0],
        extra=1,
        event_time="2030-01-01T00:00:00+00:00",
    )
    resp = await intake.post("assessments", body)

    assert resp.status == 422
    paths = sorted(e["path"] for e in (await resp.json())["errors"])
    assert paths == ["event_time", "extra", "item_responses.1", "item_responses.4"]


async def test_timestamp_within_the_clock_skew_is_accepted(intake: Intake) -> None:
    resp = await intake.post("symptom-reports", symptom_body(event_time="2026-03-02T12:04:59Z"))
    assert resp.status == 201


async def test_notes_never_echoed_in_errors(intake: Intake) -> None:
    secret = "my secret diary entry"
    resp = await intake.post("symptom-reports", symptom_body(notes=secret, severity=99, context=secret))
    assert resp.status == 422
    assert secret not in await resp.text()


@pytest.mark.parametrize("raw", [b"{", b'{"severity": 3,}', b"\xff\xfe", b""])
async def test_malformed_json_is_400(intake: Intake, raw: bytes) -> None:
    resp = await intake.client.post(
        "/v1/patients/p_" + "a1" * 16 + "/symptom-reports",
        data=raw,
        headers={
            "Authorization": "Bearer token-for-patient-a-0123456789",
            "Content-Type": "application/json",
        },
    )

    assert resp.status == 400
    [error] = (await resp.json())["errors"]
    assert error["type"] == "json_invalid" and "not valid JSON" in error["message"]
    assert intake.producer.sent == []


async def test_other_content_types_are_415(intake: Intake) -> None:
    resp = await intake.client.post(
        "/v1/patients/p_" + "a1" * 16 + "/symptom-reports",
        data=b"severity=3",
        headers={
            "Authorization": "Bearer token-for-patient-a-0123456789",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert resp.status == 415


async def test_oversized_body_is_413(intake_factory: Any) -> None:
    intake = await intake_factory(max_body_bytes=2048)
    resp = await intake.post("symptom-reports", symptom_body(notes="x" * 3000))
    assert resp.status == 413
    assert intake.producer.sent == []
