"""The intake against the real broker: answered after Kafka's ack, readable Avro on the topic."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from connectors.intake import HashedTokenStore, IntakeSettings, create_intake_app, token_digest
from novamind.platform.kafka import admin_config, consumer_config
from novamind.platform.mongo import database, mongo_client
from novamind.platform.privacy.audit import AuditLog, AuditQuery
from novamind.platform.producer import EventProducer
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from schemas.models import AssessmentResult, AuditOutcome, Band, SymptomReport
from tests.connectors.intake.conftest import cipher, decrypt_notes

PATIENT = "p_" + "f6" * 16  # unique to this test: audit events are queried by patient
TOKEN = "integration-token-0123456789abcdef"
NOTES = "felt panicky on the tram, called my mother"


class AckRecorder:
    """The real producer, noting when each acknowledgement arrived."""

    def __init__(self, inner: EventProducer) -> None:
        self.inner = inner
        self.acked_at: list[float] = []

    async def deliver(self, topic: str, *, key: bytes, value: bytes, timeout: float = 30.0) -> None:
        await self.inner.deliver(topic, key=key, value=value, timeout=timeout)
        self.acked_at.append(time.monotonic())


def _consume(settings: Settings, topic: str, group: str, count: int) -> list[Any]:
    consumer = Consumer(consumer_config(settings.kafka, group_id=group, client_id=group))
    consumer.subscribe([topic])
    messages: list[Any] = []
    deadline = time.monotonic() + 60
    try:
        while len(messages) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None:
                assert msg.error() is None, msg.error()
                messages.append(msg)
    finally:
        consumer.close()
    return messages


async def test_intake_produces_acknowledged_avro_records(
    settings: Settings, run_id: str, tmp_path: Path
) -> None:
    topic, audit_topic = f"intake-{run_id}-patient-reports", f"intake-{run_id}-audit-events"
    admin = AdminClient(admin_config(settings.kafka))
    new = [
        NewTopic(name, num_partitions=settings.kafka.partitions, replication_factor=1)
        for name in (topic, audit_topic)
    ]
    for future in admin.create_topics(new).values():
        future.result(timeout=30)
    tokens_file = tmp_path / "tokens.json"
    tokens_file.write_text(json.dumps({token_digest(TOKEN): PATIENT}))

    producer = EventProducer(kafka=settings.kafka, client_id=f"intake-test-{run_id}")
    recorder, codec = AckRecorder(producer), AvroCodec()
    mongo = mongo_client(settings.mongo, app_name="intake-test")
    audit = AuditLog(db=database(mongo, settings.mongo), codec=codec, producer=producer, topic=audit_topic)
    app = create_intake_app(
        settings=IntakeSettings(topic=topic),
        producer=recorder,
        codec=codec,
        tokens=HashedTokenStore.from_file(tokens_file),
        encryptor=cipher(),
        audit=audit,
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    # Recent times: the intake refuses what is older than the workers' lateness horizon.
    local = dt.timezone(dt.timedelta(hours=-5))
    symptom_time = (dt.datetime.now(local) - dt.timedelta(days=2)).replace(microsecond=0)
    assessment_time = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).replace(microsecond=0)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        symptom = await client.post(
            f"/v1/patients/{PATIENT}/symptom-reports",
            headers=headers,
            json={
                "submission_id": f"s-{run_id}",
                "symptom_type": "PANIC",
                "severity": 8,
                "event_time": symptom_time.isoformat(),
                "notes": NOTES,
            },
        )
        answered_at = time.monotonic()
        assert symptom.status == 201, await symptom.text()
        assert producer.stats.acknowledged[topic] == 1  # acknowledged before we were answered
        assert recorder.acked_at[0] <= answered_at
        assessment = await client.post(
            f"/v1/patients/{PATIENT}/assessments",
            headers=headers,
            json={
                "submission_id": f"a-{run_id}",
                "instrument": "PHQ9",
                "item_responses": [2, 2, 2, 2, 2, 2, 2, 1, 1],
                "event_time": assessment_time.isoformat(),
            },
        )
        assert assessment.status == 201, await assessment.text()
        retry = await client.post(
            f"/v1/patients/{PATIENT}/assessments",
            headers=headers,
            json={
                "submission_id": f"a-{run_id}",
                "instrument": "PHQ9",
                "item_responses": [2, 2, 2, 2, 2, 2, 2, 1, 1],
                "event_time": assessment_time.isoformat(),
            },
        )
        assert retry.status == 200
        symptom_body, assessment_body = await symptom.json(), await assessment.json()
    assert producer.flush(10) == 0

    messages = await asyncio.to_thread(_consume, settings, topic, f"intake-check-{run_id}", 2)
    assert len(messages) == 2
    assert {m.key() for m in messages} == {PATIENT.encode()}
    assert len({m.partition() for m in messages}) == 1  # one patient, one partition: ordered
    records = {type(r).__name__: r for r in (codec.decode(m.value()) for m in messages)}
    assert all(NOTES.encode() not in m.value() for m in messages)

    report = records["SymptomReport"]
    assert isinstance(report, SymptomReport)
    assert report.event_id == symptom_body["event_id"]
    assert (report.patient_id, report.severity, report.source) == (PATIENT, 8, "intake")
    assert report.event_time == symptom_time.astimezone(dt.UTC)
    assert report.event_time.utcoffset() == dt.timedelta(0)
    assert report.notes is not None and decrypt_notes(report.notes, PATIENT) == NOTES

    result = records["AssessmentResult"]
    assert isinstance(result, AssessmentResult)
    assert result.event_id == assessment_body["event_id"]
    assert (result.total, result.band, result.item9_positive) == (16, Band.MODERATELY_SEVERE, True)
    assert (assessment_body["total"], assessment_body["band"]) == (16, "MODERATELY_SEVERE")
    audited = await audit.query(AuditQuery(patient_id=PATIENT))
    await mongo.close()
    assert [(e.outcome, e.details["status"]) for e in audited] == [
        (AuditOutcome.ALLOWED, "201"),
        (AuditOutcome.ALLOWED, "201"),
        (AuditOutcome.ALLOWED, "200"),
    ]
    assert {e.actor for e in audited} == {f"patient-app:{token_digest(TOKEN)[:16]}"}
