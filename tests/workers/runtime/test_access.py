"""Worker views' access: JWT and static tokens, SMART read scopes, every refusal audited."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from novamind.platform.auth.keys import JwksKeys, usable_keys
from novamind.platform.auth.tokens import JwtVerifier
from novamind.platform.settings import Settings, WorkerSettings
from schemas.models import AuditAction, AuditOutcome
from tests.novamind.platform.auth.factories import AUDIENCE, ISSUER, TestIdentityProvider
from workers.runtime.access import ViewAccess

PATIENT = "p_" + "e5" * 16
OTHER = "p_" + "f6" * 16


@dataclass
class RecordedAudit:
    events: list[dict[str, Any]] = field(default_factory=list)

    async def record(self, **event: Any) -> None:
        self.events.append(event)


@pytest.fixture(scope="module")
def idp() -> TestIdentityProvider:
    return TestIdentityProvider()


def _jwt_access(idp: TestIdentityProvider) -> tuple[ViewAccess, RecordedAudit]:
    audit = RecordedAudit()
    verifier = JwtVerifier(keys=JwksKeys(usable_keys(idp.jwks())), issuer=ISSUER, audience=AUDIENCE)
    return ViewAccess(Settings(), audit, verifier=verifier), audit  # type: ignore[arg-type]


def _request(patient: str, token: str | None, query: str = "") -> web.Request:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return make_mocked_request("GET", f"/patients/{patient}/twin{query}", headers=headers)


async def test_a_clinician_token_reads_any_patient_and_is_audited(idp: TestIdentityProvider) -> None:
    access, audit = _jwt_access(idp)
    token = idp.token(sub="clinician-7", scope="openid user/Observation.read")
    await access(_request(OTHER, token, "?purpose=PATIENT_SAFETY"), OTHER, "twin")

    [event] = audit.events
    assert (event["actor"], event["action"], event["purpose"], event["patient_id"]) == (
        "sub:clinician-7", AuditAction.ACCESS, "PATIENT_SAFETY", OTHER
    )
    assert event.get("outcome", AuditOutcome.ALLOWED) == AuditOutcome.ALLOWED


async def test_a_patient_token_reads_only_its_own_patient(idp: TestIdentityProvider) -> None:
    access, audit = _jwt_access(idp)
    token = idp.token(patient=PATIENT, scope="patient/*.read")
    await access(_request(PATIENT, token), PATIENT, "windows")
    with pytest.raises(web.HTTPForbidden):
        await access(_request(OTHER, token), OTHER, "windows")

    allowed, denied = audit.events
    assert allowed["patient_id"] == PATIENT and "outcome" not in allowed
    assert (denied["outcome"], denied["details"], denied["patient_id"]) == (
        AuditOutcome.DENIED, {"reason": "patient_mismatch"}, OTHER
    )


@pytest.mark.parametrize(
    ("claims", "error", "reason"),
    [
        ({"patient": PATIENT, "scope": "patient/Observation.write"}, web.HTTPForbidden, "scope_denied"),
        ({"scope": "user/Observation.read", "aud": "novamind-intake-other"}, web.HTTPUnauthorized,
         "wrong_audience"),
        ({"scope": "user/Observation.read", "exp": int(time.time()) - 60, "iat": int(time.time()) - 600,
          "nbf": int(time.time()) - 600}, web.HTTPUnauthorized, "token_expired"),
    ],
)
async def test_refusals_are_audited(
    idp: TestIdentityProvider, claims: dict[str, Any], error: type[Exception], reason: str
) -> None:
    access, audit = _jwt_access(idp)
    with pytest.raises(error):
        await access(_request(PATIENT, idp.token(**claims)), PATIENT, "twin")
    [event] = audit.events
    assert (event["outcome"], event["details"]["reason"]) == (AuditOutcome.DENIED, reason)


async def test_unsigned_token_is_refused(idp: TestIdentityProvider) -> None:
    access, audit = _jwt_access(idp)
    with pytest.raises(web.HTTPUnauthorized):
        await access(_request(PATIENT, idp.unsigned_token(scope="user/*.read")), PATIENT, "twin")
    assert audit.events[0]["actor"] == "anonymous"


async def test_static_view_tokens_still_work_for_development() -> None:
    audit = RecordedAudit()
    settings = Settings(worker=WorkerSettings(view_tokens={"clinician-7": "dev-token"}))  # type: ignore[dict-item]
    access = ViewAccess(settings, audit)  # type: ignore[arg-type]
    await access(_request(PATIENT, "dev-token"), PATIENT, "twin")
    with pytest.raises(web.HTTPUnauthorized):
        await access(_request("jane-doe-1970", "wrong"), "jane-doe-1970", "twin")
    allowed, denied = audit.events
    assert allowed["actor"] == "clinician-7"
    assert (denied["actor"], denied["patient_id"], denied["details"]) == (
        "anonymous", None, {"reason": "unknown_token"}
    )
    assert "jane" not in json.dumps(denied, default=str)
