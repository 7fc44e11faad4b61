"""Idempotency across intake replicas and restarts, on the real Kafka and MongoDB-wire server.

Two ``novamind intake serve`` processes (JWT mode, keys from a JWKS file) share the
``intake_submissions`` ledger: a submission accepted by one is answered 200 with its original
event id by the other, and by the first after it restarted, and is on the topic once.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from connectors.intake.idempotency import (
    SUBMISSIONS_COLLECTION,
    MongoSubmissionLedger,
    submission_event_id,
)
from novamind.platform.mongo import database, mongo_client
from novamind.platform.privacy.audit import AUDIT_COLLECTION
from novamind.platform.settings import Settings
from novamind.platform.topicreader import read_all
from tests.integration.harness import ROOT, free_port, isolated, reader_codec, worker_env
from tests.novamind.platform.auth.factories import AUDIENCE, ISSUER, TestIdentityProvider

PATIENT = "p_" + "a7" * 16  # unique to this module
NOTES = "my neighbour keeps calling me at night"


class IntakeProcess:
    """One ``novamind intake serve`` replica; its log in a file."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str) -> None:
        self.port = free_port()
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "novamind.app.cli", "intake", "serve", "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2).close()
                return
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "intake did not start:\n" + self.log_path.read_text()
                time.sleep(0.2)

    def post(self, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/patients/{PATIENT}/symptom-reports",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return int(answer.status), json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


def _env(scenario: Settings, tmp: Path, idp: TestIdentityProvider) -> dict[str, str]:
    jwks, keys = tmp / "jwks.json", tmp / "field-keys.json"
    jwks.write_text(json.dumps(idp.jwks()))
    keys.write_text(json.dumps({"k1": base64.b64encode(os.urandom(32)).decode()}))
    return {
        **worker_env(scenario),
        "NOVAMIND_AUTH__MODE": "jwt",
        "NOVAMIND_AUTH__ISSUER": ISSUER,
        "NOVAMIND_AUTH__AUDIENCE": AUDIENCE,
        "NOVAMIND_AUTH__JWKS_FILE": str(jwks),
        "NOVAMIND_SECURITY__FIELD_KEYS_FILE": str(keys),
        "NOVAMIND_SECURITY__ACTIVE_FIELD_KEY_ID": "k1",
    }


def test_a_retry_to_another_replica_after_a_restart_is_200_with_the_original_event_id(
    settings: Settings, run_id: str, tmp_path: Path
) -> None:
    scenario = isolated(settings, f"intake-replicas-{run_id}")
    idp = TestIdentityProvider()
    env = _env(scenario, tmp_path, idp)
    token = idp.token(patient=PATIENT, scope="launch/patient patient/Observation.write")
    body = {
        "submission_id": f"offline-{run_id}",
        "symptom_type": "INSOMNIA",
        "severity": 7,
        "event_time": (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).isoformat(),
        "notes": NOTES,
    }
    first, second = IntakeProcess(env, tmp_path, "a"), IntakeProcess(env, tmp_path, "b")
    restarted = None
    try:
        status, accepted = first.post(token, body)
        assert status == 201, (accepted, first.log())
        event_id = accepted["event_id"]
        assert event_id == submission_event_id(PATIENT, body["submission_id"])

        first.stop()  # the replica that accepted it is gone; its memory with it
        restarted = IntakeProcess(env, tmp_path, "a-restarted")
        assert second.post(token, body) == (200, accepted), second.log()
        assert restarted.post(token, body) == (200, accepted), restarted.log()
        status, conflict = second.post(token, {**body, "severity": 2})
        assert status == 409 and conflict["errors"][0]["path"] == "submission_id"
        now = int(time.time())
        expired = idp.token(patient=PATIENT, exp=now - 60, iat=now - 900, nbf=now - 900)
        assert second.post(expired, {**body, "submission_id": "late"})[0] == 401
        someone_else = idp.token(sub="app-user-99", patient="p_" + "b8" * 16)
        assert restarted.post(someone_else, {**body, "submission_id": "other"})[0] == 403
    finally:
        for replica in (first, second, restarted):
            if replica is not None:
                replica.stop()

    topic = scenario.kafka.topic("patient-reports")
    records = [reader_codec(scenario).decode(m.value()) for m in read_all(scenario.kafka, topic)]
    assert [r.event_id for r in records] == [event_id]  # the retries produced nothing
    db = MongoClient(scenario.mongo.uri.get_secret_value())[scenario.mongo.database]
    stored = db[SUBMISSIONS_COLLECTION].find_one({"_id": event_id})
    assert stored is not None and stored["response"] == accepted and stored["patient_id"] == PATIENT
    assert NOTES not in json.dumps(stored, default=str)
    audits = sorted(db[AUDIT_COLLECTION].find({"patient_id": PATIENT}), key=lambda a: a["event_time"])
    assert [(a["actor"], a["details"]["status"], a["details"]["reason"]) for a in audits] == [
        ("sub:app-user-42", "201", "accepted"),
        ("sub:app-user-42", "200", "replayed"),
        ("sub:app-user-42", "200", "replayed"),
        ("sub:app-user-42", "409", "conflict"),
        ("anonymous", "401", "token_expired"),
        ("sub:app-user-99", "403", "patient_mismatch"),
    ]


async def test_ledger_on_the_mongodb_wire_server(settings: Settings, run_id: str) -> None:
    client = mongo_client(settings.mongo, app_name="intake-ledger-test")
    db = database(client, settings.mongo)
    ledger = MongoSubmissionLedger(db=db, retention=dt.timedelta(days=31))
    await ledger.ensure_indexes()
    now = dt.datetime.now(dt.UTC)
    key = (PATIENT, f"race-{run_id}")
    try:
        # Two replicas claim at once: the unique _id lets exactly one through.
        claims = await asyncio.gather(*(ledger.claim(key, "fp-1", now) for _ in range(8)))
        assert sum(c is None for c in claims) == 1
        assert {c.fingerprint for c in claims if c is not None} == {"fp-1"}
        await ledger.release(key, "fp-2")  # not ours: kept
        assert await ledger.claim(key, "fp-1", now) is not None
        await ledger.release(key, "fp-1")  # delivery failed: forgotten
        assert await ledger.claim(key, "fp-3", now) is None
        await ledger.acknowledge(key, "fp-3", {"event_id": "e-3"}, now)
        await ledger.release(key, "fp-3")  # acknowledged entries are never released
        seen = await ledger.claim(key, "fp-3", now)
        assert seen is not None and seen.response == {"event_id": "e-3"}

        old = (PATIENT, f"old-{run_id}")
        assert await ledger.claim(old, "fp", now - dt.timedelta(days=32)) is None
        assert await ledger.prune(now) >= 1
        collection = db[SUBMISSIONS_COLLECTION]
        assert await collection.find_one({"_id": submission_event_id(*old)}) is None
        assert await collection.find_one({"_id": submission_event_id(*key)}) is not None
    finally:
        await client.close()
