"""The intake with JWT access tokens signed by a test identity provider (real RSA/EC keys).

Every refusal is a 401 or 403, leaves a DENIED audit event naming its reason, and produces
nothing; the token never reaches the log.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from structlog.testing import capture_logs

from novamind.platform.auth.keys import JwksKeys, usable_keys
from novamind.platform.auth.tokens import JwtVerifier
from schemas.models import AuditOutcome
from tests.connectors.intake.conftest import PATIENT_A, PATIENT_B, Intake, assessment_body, symptom_body
from tests.novamind.platform.auth.factories import AUDIENCE, ISSUER, TestIdentityProvider


@pytest.fixture(scope="module")
def idp() -> TestIdentityProvider:
    return TestIdentityProvider()


@pytest.fixture
async def jwt_intake(intake_factory: Any, idp: TestIdentityProvider) -> Intake:
    verifier = JwtVerifier(keys=JwksKeys(usable_keys(idp.jwks())), issuer=ISSUER, audience=AUDIENCE)
    intake: Intake = await intake_factory(authenticator=verifier)
    return intake


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_a_valid_token_submits_for_its_patient(
    jwt_intake: Intake, idp: TestIdentityProvider, alg: str
) -> None:
    token = idp.token(alg=alg, patient=PATIENT_A)
    with capture_logs() as logs:
        resp = await jwt_intake.post("assessments", assessment_body(), token=token)

    assert resp.status == 201, await resp.text()
    [sent] = jwt_intake.producer.sent
    assert sent.key == PATIENT_A.encode()
    [audit] = jwt_intake.audit.events
    assert (audit.actor, audit.outcome, audit.patient_id) == (
        "sub:app-user-42", AuditOutcome.ALLOWED, PATIENT_A
    )
    assert token not in json.dumps(logs, default=str)


def _refused(idp: TestIdentityProvider, case: str) -> tuple[str, int, str]:
    now = int(time.time())
    return {
        "expired": (idp.token(patient=PATIENT_A, exp=now - 60, iat=now - 900, nbf=now - 900),
                    401, "token_expired"),
        "wrong issuer": (idp.token(patient=PATIENT_A, iss="https://other-idp.example.test"), 401,
                         "wrong_issuer"),
        "wrong audience": (idp.token(patient=PATIENT_A, aud="novamind-worker-views"), 401, "wrong_audience"),
        "alg none": (idp.unsigned_token(patient=PATIENT_A), 401, "algorithm_not_allowed"),
        "HS256 signed with the public key": (idp.hs256_with_public_key(patient=PATIENT_A), 401,
                                             "algorithm_not_allowed"),
        "unknown kid": (idp.token(patient=PATIENT_A, kid="retired-key"), 401, "unknown_key"),
        "read-only scope": (idp.token(patient=PATIENT_A, scope="launch/patient patient/*.read"), 403,
                            "scope_denied"),
        "clinician scope": (idp.token(scope="user/Observation.write"), 403, "scope_denied"),
        "another patient": (idp.token(patient=PATIENT_B), 403, "patient_mismatch"),
        "no patient claim": (idp.token(), 403, "no_patient"),
    }[case]


@pytest.mark.parametrize(
    "case",
    ["expired", "wrong issuer", "wrong audience", "alg none", "HS256 signed with the public key",
     "unknown kid", "read-only scope", "clinician scope", "another patient", "no patient claim"],
)
async def test_refused_tokens_are_audited_and_produce_nothing(
    jwt_intake: Intake, idp: TestIdentityProvider, case: str
) -> None:
    token, status, reason = _refused(idp, case)
    with capture_logs() as logs:
        resp = await jwt_intake.post("symptom-reports", symptom_body(), token=token)

    assert resp.status == status
    body = await resp.json()
    assert body["errors"][0]["type"] in {"unauthenticated", "insufficient_scope", "forbidden"}
    assert reason not in json.dumps(body)  # the client is not told which check failed
    challenge = resp.headers.get("WWW-Authenticate", "")
    if status == 401:
        assert 'error="invalid_token"' in challenge
    elif reason == "scope_denied":
        assert 'error="insufficient_scope"' in challenge and "patient/Observation.write" in challenge
    [audit] = jwt_intake.audit.events
    assert (audit.outcome, audit.details["reason"], audit.details["status"]) == (
        AuditOutcome.DENIED, reason, str(status)
    )
    assert audit.patient_id == PATIENT_A
    assert audit.actor == ("anonymous" if status == 401 else "sub:app-user-42")
    assert jwt_intake.producer.sent == []
    dumped = json.dumps(logs, default=str)
    assert token not in dumped and token.split(".")[1] not in dumped
