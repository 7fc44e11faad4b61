"""The audit log and the re-identification store against the real MongoDB-compatible server
(FerretDB locally) and the real Kafka broker."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from novamind.platform.kafka import admin_config, consumer_config
from novamind.platform.mongo import database, mongo_client
from novamind.platform.privacy.audit import AUDIT_COLLECTION, AuditLog, AuditQuery
from novamind.platform.privacy.exceptions import (
    DuplicateAuditEvent,
    IdentityConflict,
    PseudonymNotFound,
    ReidentificationDenied,
)
from novamind.platform.privacy.fieldcrypt import FieldCipher
from novamind.platform.privacy.reidentification import (
    REID_COLLECTION,
    ReidentificationPolicy,
    ReidentificationStore,
)
from novamind.platform.producer import EventProducer
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from schemas.models import AuditAction, AuditEvent, AuditOutcome

ALICE = "p_" + "a" * 32
BOB = "p_" + "b" * 32
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Any]:
    """A database of its own per test (under the session's unique name), dropped afterwards."""
    client = mongo_client(settings.mongo, app_name="test-audit")
    name = f"{database(client, settings.mongo).name}_{uuid.uuid4().hex[:6]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


def clock_factory(start: datetime = T0, step: timedelta = timedelta(minutes=1)) -> Any:
    moments = iter(start + i * step for i in range(10_000))
    return lambda: next(moments)


async def audit_factory(db: Any, **options: Any) -> AuditLog:
    log = AuditLog(db=db, codec=AvroCodec(), clock=clock_factory(), **options)
    await log.ensure_indexes()
    return log


async def test_audit_log_is_append_only(db: Any) -> None:
    log = await audit_factory(db)
    event = await log.record(
        actor="intake",
        action=AuditAction.COLLECT,
        purpose="TREATMENT",
        resource="topic:patient-reports",
        patient_id=ALICE,
        details={"records": "1"},
    )
    forged = event.model_copy(update={"actor": "someone-else", "outcome": AuditOutcome.DENIED})
    with pytest.raises(DuplicateAuditEvent):
        await log.append(forged)
    # Even bypassing _id, the unique index on event_id refuses a second copy.
    from pymongo.errors import DuplicateKeyError

    with pytest.raises(DuplicateKeyError):
        await db[AUDIT_COLLECTION].insert_one({"event_id": event.event_id, "actor": "x"})
    stored = await log.query(AuditQuery())
    assert stored == [event]
    indexes = await db[AUDIT_COLLECTION].index_information()
    assert indexes["event_id_unique"]["unique"] is True
    assert {"patient_id_event_time", "actor_event_time", "purpose_event_time"} <= set(indexes)


async def test_audit_query_filters(db: Any) -> None:
    log = await audit_factory(db)
    plan = [  # actor, action, patient, purpose, outcome
        ("intake", AuditAction.COLLECT, ALICE, "TREATMENT", AuditOutcome.ALLOWED),
        ("connector-ehr", AuditAction.COLLECT, BOB, "TREATMENT", AuditOutcome.ALLOWED),
        ("dr-a", AuditAction.REIDENTIFY, ALICE, "PATIENT_SAFETY", AuditOutcome.ALLOWED),
        ("analyst", AuditAction.REIDENTIFY, BOB, "RESEARCH", AuditOutcome.DENIED),
        ("twin-consumers", AuditAction.ACCESS, ALICE, "TREATMENT", AuditOutcome.ALLOWED),
        ("exporter", AuditAction.EXPORT, None, "RESEARCH", AuditOutcome.ALLOWED),
    ]
    events = [
        await log.record(
            actor=actor, action=action, patient_id=patient, purpose=purpose, outcome=outcome, resource="test"
        )
        for actor, action, patient, purpose, outcome in plan
    ]
    times = [e.event_time for e in events]  # one minute apart from T0

    async def ids(**filters: Any) -> list[str]:
        return [e.event_id for e in await log.query(AuditQuery(**filters))]

    assert await ids() == [e.event_id for e in events]
    assert await ids(patient_id=ALICE) == [events[i].event_id for i in (0, 2, 4)]
    assert await ids(actor="dr-a") == [events[2].event_id]
    assert await ids(purpose="RESEARCH") == [events[3].event_id, events[5].event_id]
    assert await ids(action=AuditAction.REIDENTIFY) == [events[2].event_id, events[3].event_id]
    assert await ids(outcome=AuditOutcome.DENIED) == [events[3].event_id]
    assert await ids(since=times[1], until=times[3]) == [events[1].event_id, events[2].event_id]
    assert await ids(patient_id=ALICE, purpose="TREATMENT", since=times[1]) == [events[4].event_id]
    assert await ids(limit=2) == [events[0].event_id, events[1].event_id]
    assert await ids(actor="nobody") == []
    round_trip = (await log.query(AuditQuery(actor="analyst")))[0]
    assert round_trip == events[3] and round_trip.event_time.tzinfo is not None


async def test_audit_events_are_published_to_kafka(db: Any, settings: Settings) -> None:
    topic = f"audit-events-test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(admin_config(settings.kafka))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    producer = EventProducer(kafka=settings.kafka, client_id="test-audit")
    log = await audit_factory(db, producer=producer, topic=topic)
    collected = await log.record(
        actor="intake",
        action=AuditAction.COLLECT,
        purpose="TREATMENT",
        resource="topic:patient-reports",
        patient_id=ALICE,
    )
    system = await log.record(
        actor="exporter", action=AuditAction.EXPORT, purpose="RESEARCH", resource="file:cohort.parquet"
    )
    assert producer.flush(30) == 0
    consumer = Consumer(consumer_config(settings.kafka, group_id=f"t-{topic}", client_id="t"))
    consumer.subscribe([topic])
    received = []
    try:
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                received.append(message)
            if len(received) == 2:
                break
    finally:
        consumer.close()
        admin.delete_topics([topic])
    codec = AvroCodec()
    assert [m.key() for m in received] == [ALICE.encode(), b"exporter"]
    assert [codec.decode(m.value() or b"") for m in received] == [collected, system]


async def reid_factory(db: Any, *, actors: frozenset[str] = frozenset({"dr-a"})) -> Any:
    cipher = FieldCipher({"k1": os.urandom(32)}, "k1")
    log = await audit_factory(db)
    store = ReidentificationStore(
        db=db,
        cipher=cipher,
        audit=log,
        policy=ReidentificationPolicy(allowed_actors=actors),
    )
    return store, log


async def test_reidentification_store_keeps_identifiers_encrypted(db: Any) -> None:
    store, _ = await reid_factory(db)
    assert await store.remember(ALICE, "urn:oid:2.16.840.1.113883.19.5", "MRN-000042") is True
    assert await store.remember(ALICE, "urn:oid:2.16.840.1.113883.19.5", "MRN-000042") is False
    raw = await db[REID_COLLECTION].find_one({"_id": ALICE})
    assert raw is not None and b"MRN-000042" not in repr(raw).encode()
    assert "2.16.840" not in repr(raw) and raw["mrn"]["key_id"] == "k1"
    # A fresh store (no cache) detects a pseudonym re-used for other identifiers.
    other, _ = await reid_factory(db)
    other._cipher = store._cipher
    with pytest.raises(IdentityConflict):
        await other.remember(ALICE, "urn:oid:2.16.840.1.113883.19.5", "MRN-999999")
    # Ciphertext copied onto another pseudonym's record does not decrypt.
    await db[REID_COLLECTION].insert_one({**raw, "_id": BOB})
    from novamind.platform.privacy.exceptions import DecryptionFailed

    with pytest.raises(DecryptionFailed):
        await store.lookup(BOB, actor="dr-a", purpose="TREATMENT")


async def test_every_lookup_is_audited(db: Any) -> None:
    store, log = await reid_factory(db)
    await store.remember(ALICE, "urn:oid:1.2.3", "MRN-7")
    identity = await store.lookup(ALICE, actor="dr-a", purpose="TREATMENT", details={"os_user": "ops"})
    assert (identity.system, identity.mrn) == ("urn:oid:1.2.3", "MRN-7")
    with pytest.raises(ReidentificationDenied):
        await store.lookup(ALICE, actor="analyst", purpose="TREATMENT")
    with pytest.raises(ReidentificationDenied):
        await store.lookup(ALICE, actor="dr-a", purpose="RESEARCH")
    with pytest.raises(PseudonymNotFound):
        await store.lookup(BOB, actor="dr-a", purpose="TREATMENT")
    with pytest.raises(PseudonymNotFound):
        await store.lookup("MRN-7", actor="dr-a", purpose="TREATMENT")
    events: list[AuditEvent] = await log.query(AuditQuery(action=AuditAction.REIDENTIFY))
    summary = [
        (e.actor, e.patient_id, e.outcome, e.details.get("reason"), e.details.get("found")) for e in events
    ]
    assert summary == [
        ("dr-a", ALICE, AuditOutcome.ALLOWED, None, "true"),
        ("analyst", ALICE, AuditOutcome.DENIED, "actor_not_allowed", None),
        ("dr-a", ALICE, AuditOutcome.DENIED, "purpose_not_allowed", None),
        ("dr-a", BOB, AuditOutcome.ALLOWED, None, "false"),
        ("dr-a", None, AuditOutcome.ALLOWED, None, "false"),
    ]
    assert events[0].details["os_user"] == "ops"
    assert all("MRN" not in str(e.model_dump()) for e in events)


async def test_nobody_may_reidentify_when_no_actor_is_configured(db: Any) -> None:
    store, log = await reid_factory(db, actors=frozenset())
    await store.remember(ALICE, "urn:oid:1.2.3", "MRN-7")
    with pytest.raises(ReidentificationDenied):
        await store.lookup(ALICE, actor="admin", purpose="TREATMENT")
    assert [e.outcome for e in await log.query(AuditQuery())] == [AuditOutcome.DENIED]
