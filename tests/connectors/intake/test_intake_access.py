"""Tokens, audit events and the request log: who may submit, what is recorded, what is not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from connectors.intake import HashedTokenStore, token_digest
from connectors.intake.auth import bearer_token
from connectors.intake.exceptions import TokenStoreError
from schemas.models import AuditAction, AuditOutcome
from tests.connectors.intake.conftest import (
    PATIENT_A,
    PATIENT_B,
    TOKEN_A,
    TOKEN_B,
    FakeAudit,
    FakeProducer,
    Intake,
    assessment_body,
    symptom_body,
)


async def test_missing_token_is_401_with_a_challenge(intake: Intake) -> None:
    resp = await intake.post("symptom-reports", symptom_body(), token=None)

    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="novamind-intake"'
    [audit] = intake.audit.events
    assert (audit.actor, audit.outcome, audit.patient_id) == ("anonymous", AuditOutcome.DENIED, PATIENT_A)
    assert intake.producer.sent == []


async def test_unknown_token_is_401_invalid_token(intake: Intake) -> None:
    resp = await intake.post("assessments", assessment_body(), token="stolen-or-made-up")
    assert resp.status == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    assert intake.producer.sent == []


async def test_token_of_another_patient_is_403(intake: Intake) -> None:
    resp = await intake.post("symptom-reports", symptom_body(), token=TOKEN_B)

    assert resp.status == 403
    [audit] = intake.audit.events
    assert audit.actor == f"patient-app:{token_digest(TOKEN_B)[:16]}"
    assert (audit.patient_id, audit.outcome) == (PATIENT_A, AuditOutcome.DENIED)
    assert audit.details["reason"] == "patient_mismatch"
    assert intake.producer.sent == []


async def test_each_submission_leaves_one_audit_event(intake_factory: Any) -> None:
    intake = await intake_factory()
    await intake.post("symptom-reports", symptom_body())  # accepted
    await intake.post("symptom-reports", symptom_body())  # replayed
    await intake.post("symptom-reports", symptom_body(severity=1))  # conflict
    await intake.post("assessments", assessment_body(), patient=PATIENT_B)  # forbidden
    intake.producer.fail = True
    await intake.post("assessments", assessment_body())  # not acknowledged

    events = intake.audit.events
    assert [(e.outcome, e.details["reason"], e.details["status"]) for e in events] == [
        (AuditOutcome.ALLOWED, "accepted", "201"),
        (AuditOutcome.ALLOWED, "replayed", "200"),
        (AuditOutcome.DENIED, "conflict", "409"),
        (AuditOutcome.DENIED, "patient_mismatch", "403"),
        (AuditOutcome.UNKNOWN, "delivery_failed", "503"),
    ]
    for event in events:
        assert (event.action, event.purpose, event.resource) == (
            AuditAction.COLLECT,
            "TREATMENT",
            "patient-reports",
        )
        assert event.actor == "app-a"
    accepted = events[0]
    assert accepted.patient_id == PATIENT_A and accepted.details["record"] == "SymptomReport"
    assert (
        accepted.details["event_id"]
        == (await (await intake.post("symptom-reports", symptom_body())).json())["event_id"]
    )


async def test_audit_failure_answers_503(intake_factory: Any) -> None:
    intake = await intake_factory(audit=FakeAudit(fail=True), producer=FakeProducer())
    resp = await intake.post("symptom-reports", symptom_body())
    assert resp.status == 503 and "Retry-After" in resp.headers
    intake.audit.fail = False
    retry = await intake.post("symptom-reports", symptom_body())
    assert retry.status == 200 and len(intake.producer.sent) == 1


async def test_one_log_line_per_request_without_phi(intake: Intake) -> None:
    with capture_logs() as logs:
        await intake.post("symptom-reports", symptom_body())
        await intake.post("symptom-reports", symptom_body(submission_id="s2", severity=12))
        await intake.post("symptom-reports", symptom_body(), patient="jane-doe-1970")

    lines = [entry for entry in logs if entry["event"] == "intake_request"]
    assert len(lines) == 3
    assert [(x["status"], x["patient_id"]) for x in lines] == [
        (201, PATIENT_A),
        (422, PATIENT_A),
        (403, None),
    ]
    assert lines[0]["route"] == "/v1/patients/{patient_id}/symptom-reports"
    assert lines[1]["error_paths"] == ["severity"]
    assert all(isinstance(x["latency_ms"], float) for x in lines)
    dumped = json.dumps(logs, default=str)
    for secret in ("worried about my sister", TOKEN_A, "jane-doe"):
        assert secret not in dumped


def test_token_store_keeps_only_digests(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({token_digest(TOKEN_A): PATIENT_A}))
    store = HashedTokenStore.from_file(path)

    principal = store.resolve(TOKEN_A)
    assert principal is not None and principal.patient_id == PATIENT_A
    assert store.resolve(TOKEN_B) is None
    assert TOKEN_A not in repr(vars(store))


@pytest.mark.parametrize(
    "content",
    [
        '["not", "a", "map"]',
        '{"abc": "p_' + "0" * 32 + '"}',
        json.dumps({token_digest(TOKEN_A): "MRN-12345"}),
        "{broken",
    ],
)
def test_bad_token_files_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(TokenStoreError):
        HashedTokenStore.from_file(path)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic dXNlcjpwdw==", None),
        ("Bearer", None),
    ],
)
def test_bearer_header_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
