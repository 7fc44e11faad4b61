"""The audit trail: who collected, accessed, exported or re-identified which patient's data, why.

Every event is first inserted into the append-only MongoDB collection ``audit_log`` (the
durable record: insert only, ``_id`` and a unique index on ``event_id``, no update or delete in
this code; in production the service's MongoDB role grants only ``insert`` and ``find`` on it,
see deploy/local/secure/README.md), then published as Avro to the ``audit-events`` topic,
keyed by the patient pseudonym (else the actor), for the auditor's consumers.

Details carry codes, counts and ids, never PHI: :func:`check_details` refuses keys that name
identifiers or free text and long values.
"""

from __future__ import annotations

import getpass
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from novamind.platform.mongo import database, mongo_client
from novamind.platform.privacy.exceptions import AuditError, DuplicateAuditEvent, PhiInAuditDetails
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from schemas.models import AuditAction, AuditEvent, AuditOutcome
from schemas.topics import TopicName

AUDIT_COLLECTION = "audit_log"
MAX_DETAIL_LENGTH = 128
# Words of a detail key (split at ``_ - . ``) that name identifiers or free text.
_PHI_WORDS = frozenset(
    {
        "name",
        "firstname",
        "lastname",
        "surname",
        "mrn",
        "ssn",
        "dob",
        "birthdate",
        "birth",
        "address",
        "street",
        "zip",
        "postcode",
        "phone",
        "email",
        "note",
        "notes",
        "narrative",
        "text",
        "freetext",
        "comment",
        "comments",
        "identifier",
        "identifiers",
    }
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


class Purpose(StrEnum):
    """Why patient data is used (HIPAA: treatment, payment, operations; and the rest)."""

    TREATMENT = "TREATMENT"
    PATIENT_SAFETY = "PATIENT_SAFETY"
    OPERATIONS = "OPERATIONS"
    PAYMENT = "PAYMENT"
    RESEARCH = "RESEARCH"
    PUBLIC_HEALTH = "PUBLIC_HEALTH"
    LEGAL = "LEGAL"


class AuditProducer(Protocol):
    """What the audit log needs of a Kafka producer (``novamind.platform.producer.EventProducer``)."""

    def send(self, topic: str, *, key: bytes, value: bytes) -> None: ...


@dataclass(frozen=True, kw_only=True)
class AuditQuery:
    """Filters of :meth:`AuditLog.query`; ``None`` matches everything. ``until`` is exclusive."""

    patient_id: str | None = None
    actor: str | None = None
    purpose: str | None = None
    action: AuditAction | None = None
    outcome: AuditOutcome | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 1000

    def to_filter(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for field in ("patient_id", "actor", "purpose", "action", "outcome"):
            value = getattr(self, field)
            if value is not None:
                found[field] = str(value)
        window: dict[str, datetime] = {}
        if self.since is not None:
            window["$gte"] = self.since
        if self.until is not None:
            window["$lt"] = self.until
        if window:
            found["event_time"] = window
        return found


def check_details(details: Mapping[str, str]) -> dict[str, str]:
    """``details`` as a plain dict, or :class:`PhiInAuditDetails` when it may carry PHI."""
    for key, value in details.items():
        if _PHI_WORDS.intersection(re.split(r"[_\-.\s]+", key.lower())):
            raise PhiInAuditDetails(f"audit detail {key!r} names an identifier or free text")
        if len(value) > MAX_DETAIL_LENGTH:
            raise PhiInAuditDetails(f"audit detail {key!r} is longer than {MAX_DETAIL_LENGTH} characters")
        if _EMAIL.search(value):
            raise PhiInAuditDetails(f"audit detail {key!r} holds an e-mail address")
    return dict(details)


def to_document(event: AuditEvent) -> dict[str, Any]:
    """The MongoDB document of an event (``_id`` is the event id)."""
    return {
        "_id": event.event_id,
        "event_id": event.event_id,
        "event_time": event.event_time,
        "schema_version": event.schema_version,
        "actor": event.actor,
        "action": str(event.action),
        "patient_id": event.patient_id,
        "purpose": event.purpose,
        "resource": event.resource,
        "outcome": str(event.outcome),
        "details": dict(event.details),
    }


def from_document(document: Mapping[str, Any]) -> AuditEvent:
    fields = {k: v for k, v in document.items() if k != "_id"}
    event_time = fields["event_time"]
    if event_time.tzinfo is None:  # a client built without tz_aware
        fields["event_time"] = event_time.replace(tzinfo=UTC)
    return AuditEvent.model_validate(fields)


def _now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    """Record audit events (MongoDB first, then Kafka) and query them."""

    def __init__(
        self,
        *,
        db: AsyncDatabase[dict[str, Any]],
        codec: AvroCodec,
        producer: AuditProducer | None = None,
        topic: str = TopicName.AUDIT_EVENTS,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._collection = db[AUDIT_COLLECTION]
        self._codec = codec
        self._producer = producer
        self._topic = topic
        self._clock = clock

    async def ensure_indexes(self) -> None:
        """The unique event id and the indexes of the usual queries (idempotent)."""
        c = self._collection
        await c.create_index([("event_id", ASCENDING)], unique=True, name="event_id_unique")
        await c.create_index([("event_time", ASCENDING)], name="event_time")
        for field in ("patient_id", "actor", "purpose"):
            await c.create_index([(field, ASCENDING), ("event_time", ASCENDING)], name=f"{field}_event_time")

    def build(
        self,
        *,
        actor: str,
        action: AuditAction,
        purpose: str,
        resource: str,
        outcome: AuditOutcome = AuditOutcome.ALLOWED,
        patient_id: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> AuditEvent:
        """A new event with a random id, stamped now (not yet recorded)."""
        return AuditEvent(
            event_id=str(uuid.uuid4()),
            event_time=self._clock(),
            actor=actor,
            action=action,
            patient_id=patient_id,
            purpose=purpose,
            resource=resource,
            outcome=outcome,
            details=check_details(details or {}),
        )

    async def record(
        self,
        *,
        actor: str,
        action: AuditAction,
        purpose: str,
        resource: str,
        outcome: AuditOutcome = AuditOutcome.ALLOWED,
        patient_id: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> AuditEvent:
        """Build, store and publish one event; returns it."""
        event = self.build(
            actor=actor,
            action=action,
            purpose=purpose,
            resource=resource,
            outcome=outcome,
            patient_id=patient_id,
            details=details,
        )
        await self.append(event)
        return event

    async def append(self, event: AuditEvent) -> None:
        """Insert ``event`` (never overwrite: a known id raises :class:`DuplicateAuditEvent`),
        then publish it."""
        try:
            await self._collection.insert_one(to_document(event))
        except DuplicateKeyError as exc:
            raise DuplicateAuditEvent(f"audit event {event.event_id} is already recorded") from exc
        except PyMongoError as exc:
            raise AuditError(f"could not store audit event {event.event_id}: {exc}") from exc
        if self._producer is not None:
            key = (event.patient_id or event.actor).encode()
            self._producer.send(self._topic, key=key, value=self._codec.encode(event, topic=self._topic))

    async def query(self, query: AuditQuery) -> list[AuditEvent]:
        """Stored events matching ``query``, oldest first."""
        cursor = (
            self._collection.find(query.to_filter())
            .sort([("event_time", ASCENDING), ("event_id", ASCENDING)])
            .limit(query.limit)
        )
        return [from_document(document) async for document in cursor]


@asynccontextmanager
async def open_audit_log(settings: Settings, *, producer: Any = None) -> AsyncIterator[AuditLog]:
    """An :class:`AuditLog` on the configured database (indexes ensured); closes the client."""
    client = mongo_client(settings.mongo, app_name=f"{settings.service_name}-audit")
    try:
        log = AuditLog(
            db=database(client, settings.mongo),
            codec=AvroCodec.from_settings(settings.kafka),
            producer=producer,
            topic=settings.kafka.topic(TopicName.AUDIT_EVENTS),  # the environment's prefix applies here too
        )
        await log.ensure_indexes()
        yield log
    finally:
        await client.close()


def os_user() -> str:
    """The OS user name (the default actor of a command-line access), "unknown" without one."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
