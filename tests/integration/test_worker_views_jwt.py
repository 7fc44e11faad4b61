"""A replica's patient views with JWT access tokens (NOVAMIND_AUTH__MODE=jwt, keys from a JWKS
file) on the real services: scopes and the patient claim decide, every decision is audited."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

from novamind.platform.privacy.audit import AUDIT_COLLECTION
from novamind.platform.producer import EventProducer
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from tests.integration.harness import WorkerProcess, isolated
from tests.integration.test_foundation import PATIENT, _phq9
from tests.integration.test_worker_views import _get
from tests.novamind.platform.auth.factories import ISSUER, TestIdentityProvider

AUDIENCE = "novamind-worker-views"
OTHER = "p_" + "0f" * 16


def test_jwt_views_follow_scopes_and_the_patient_claim(
    settings: Settings, run_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = isolated(settings, f"views-jwt-{run_id}")
    producer = EventProducer(kafka=scenario.kafka, client_id="views-jwt-test")
    value = AvroCodec().encode(_phq9([1, 1, 1, 1, 1, 1, 1, 1, 0]))
    producer.send(scenario.kafka.topic("patient-reports"), key=PATIENT.encode(), value=value)
    assert producer.flush(30) == 0
    idp = TestIdentityProvider(audience=AUDIENCE)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(idp.jwks()))
    auth = {"MODE": "jwt", "ISSUER": ISSUER, "AUDIENCE": AUDIENCE, "JWKS_FILE": str(jwks)}
    for name, setting in auth.items():
        monkeypatch.setenv(f"NOVAMIND_AUTH__{name}", setting)
    worker = WorkerProcess(scenario, tmp_path, "views-jwt")
    db = MongoClient(scenario.mongo.uri.get_secret_value())[scenario.mongo.database]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and db.twins.find_one({"_id": PATIENT}) is None:
            assert worker.alive(), worker.log()[-3000:]
            time.sleep(0.5)
        twin = f"/patients/{PATIENT}/twin"
        now = int(time.time())
        clinician = idp.token(sub="clinician-7", scope="openid user/Observation.read")
        own = idp.token(sub="app-user-42", patient=PATIENT, scope="patient/*.read")
        other = idp.token(sub="app-user-43", patient=OTHER, scope="patient/*.read")
        writer = idp.token(sub="app-user-44", patient=PATIENT, scope="patient/Observation.write")
        expired = idp.token(sub="clinician-7", scope="user/Observation.read", exp=now - 60,
                            iat=now - 900, nbf=now - 900)
        intake_token = TestIdentityProvider().token(scope="user/Observation.read")  # another IdP

        assert _get(worker.port, twin, expired)[0] == 401
        assert _get(worker.port, twin, intake_token)[0] == 401
        assert _get(worker.port, twin, idp.unsigned_token(scope="user/*.read"))[0] == 401
        assert _get(worker.port, twin, other)[0] == 403
        assert _get(worker.port, twin, writer)[0] == 403
        status, body = _get(worker.port, twin + "?purpose=PATIENT_SAFETY", clinician)
        assert status == 200 and isinstance(body, dict) and body["phq9_band"] == "MILD"
        assert _get(worker.port, f"/patients/{PATIENT}/windows", own)[0] == 200

        audits = list(db[AUDIT_COLLECTION].find({"patient_id": PATIENT}))
        denied = sorted((a["actor"], a["details"]["reason"]) for a in audits if a["outcome"] == "DENIED")
        assert denied == [
            ("anonymous", "algorithm_not_allowed"),
            ("anonymous", "bad_signature"),
            ("anonymous", "token_expired"),
            ("sub:app-user-43", "patient_mismatch"),
            ("sub:app-user-44", "scope_denied"),
        ]
        allowed = sorted(
            (a["actor"], a["resource"], a["purpose"]) for a in audits if a["outcome"] == "ALLOWED"
        )
        assert allowed == [
            ("sub:app-user-42", "worker-view:windows", "TREATMENT"),
            ("sub:clinician-7", "worker-view:twin", "PATIENT_SAFETY"),
        ]
    finally:
        worker.stop()
