"""A replica's web views on the real services: health, readiness, metrics, and patient views
that refuse unauthenticated readers and audit every read."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from pymongo import MongoClient

from novamind.platform.privacy.audit import AUDIT_COLLECTION
from novamind.platform.producer import EventProducer
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from tests.integration.harness import WorkerProcess, isolated
from tests.integration.test_foundation import PATIENT, _phq9

TOKEN = "view-token-for-tests"


def _get(port: int, path: str, token: str | None = None) -> tuple[int, dict | str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read().decode(), error.code
    try:
        return status, json.loads(body)
    except json.JSONDecodeError:
        return status, body


def _metrics(port: int) -> dict[str, float]:
    status, exposition = _get(port, "/metrics")
    assert status == 200 and isinstance(exposition, str)
    lines = (line.rsplit(" ", 1) for line in exposition.splitlines() if line and not line.startswith("#"))
    return {name: float(value) for name, value in lines}


def test_views_authenticate_audit_and_report(
    settings: Settings, run_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = isolated(settings, f"views-{run_id}")
    producer = EventProducer(kafka=scenario.kafka, client_id="views-test")
    value = AvroCodec().encode(_phq9([1, 1, 1, 1, 1, 1, 1, 1, 0]))
    producer.send(scenario.kafka.topic("patient-reports"), key=PATIENT.encode(), value=value)
    assert producer.flush(30) == 0
    monkeypatch.setenv("NOVAMIND_WORKER__VIEW_TOKENS", json.dumps({"clinician-7": TOKEN}))
    worker = WorkerProcess(scenario, tmp_path, "views")
    db = MongoClient(scenario.mongo.uri.get_secret_value())[scenario.mongo.database]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and db.twins.find_one({"_id": PATIENT}) is None:
            assert worker.alive(), worker.log()[-3000:]
            time.sleep(0.5)
        assert _get(worker.port, "/healthz") == (200, {"status": "alive"})
        status, ready = _get(worker.port, "/readyz")
        assert status == 200 and isinstance(ready, dict) and ready["assigned_partitions"] > 0

        twin_path = f"/patients/{PATIENT}/twin"
        assert _get(worker.port, twin_path)[0] == 401
        assert _get(worker.port, twin_path, "wrong-token")[0] == 401
        assert _get(worker.port, twin_path + "?purpose=CURIOSITY", TOKEN)[0] == 422
        denied = list(db[AUDIT_COLLECTION].find({"patient_id": PATIENT, "outcome": "DENIED"}))
        assert sorted(a["details"]["reason"] for a in denied) == ["unauthenticated", "unknown_token"]
        assert db[AUDIT_COLLECTION].count_documents({"patient_id": PATIENT, "outcome": "ALLOWED"}) == 0

        status, twin = _get(worker.port, twin_path + "?purpose=TREATMENT", TOKEN)
        assert status == 200 and isinstance(twin, dict)
        assert twin["phq9_band"] == "MILD" and "state" not in twin  # total 8
        status, windows = _get(worker.port, f"/patients/{PATIENT}/windows", TOKEN)
        assert status == 200 and isinstance(windows, dict) and windows["patient_id"] == PATIENT

        audits = list(db[AUDIT_COLLECTION].find({"patient_id": PATIENT, "outcome": "ALLOWED"}))
        assert sorted(a["resource"] for a in audits) == ["worker-view:twin", "worker-view:windows"]
        assert {(a["actor"], a["action"], a["purpose"]) for a in audits} == {
            ("clinician-7", "ACCESS", "TREATMENT")
        }

        samples = _metrics(worker.port)
        deadline = time.monotonic() + 10  # counted once the batch's offsets are committed
        while samples.get("novamind_twin_updates_total") != 1.0 and time.monotonic() < deadline:
            time.sleep(0.2)
            samples = _metrics(worker.port)
        assert samples["novamind_twin_updates_total"] == 1.0
        assert samples['novamind_events_in_total{topic="patient-reports"}'] == 1.0
        assert samples['novamind_events_in_total{topic="twin-inputs"}'] == 1.0
    finally:
        worker.stop()
