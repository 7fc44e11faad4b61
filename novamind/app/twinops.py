"""The stores behind ``novamind twin``: every read and change of a twin is audited.

A :class:`TwinOperation` holds what one command writes through: a Kafka producer and, while its
work runs, a MongoDB client with the audit log, all named ``<service>-twin-<operation>``.
:class:`TwinReader` reads a twin and its snapshots with it. Nothing here imports the worker
runtime or the twin models: promotion and rollback, which do, are in
:mod:`novamind.app.twinversions`.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo import MongoClient
from pymongo.asynchronous.database import AsyncDatabase

from novamind.platform.exceptions import UsageError
from novamind.platform.mongo import database, mongo_client
from novamind.platform.privacy.audit import AuditLog, Purpose, os_user
from novamind.platform.privacy.exceptions import AuditError
from novamind.platform.producer import EventProducer
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from schemas.models import PSEUDONYM_PATTERN, AuditAction
from schemas.topics import TopicName

T = TypeVar("T")
FLUSH_TIMEOUT_S = 15.0


class TwinOperation:
    """One operator command's clients: a Kafka producer for its audit events (and whatever else
    it sends), and, for the length of :meth:`run`, a MongoDB client and an audit log."""

    def __init__(self, settings: Settings, name: str) -> None:
        self.settings = settings
        self.client_name = f"{settings.service_name}-twin-{name}"
        self.codec = AvroCodec.from_settings(settings.kafka)
        self.producer = EventProducer(kafka=settings.kafka, client_id=self.client_name)
        self.unacknowledged = 0

    def run(self, work: Callable[[AsyncDatabase[dict[str, Any]], AuditLog], Awaitable[T]]) -> T:
        """``work(db, audit)`` in a new event loop, the MongoDB client closed after it; then wait
        (up to 15 s, whatever happened) for Kafka to acknowledge what the producer sent, and
        count in :attr:`unacknowledged` what it has not."""

        async def main() -> T:
            client = mongo_client(self.settings.mongo, app_name=self.client_name)
            try:
                db = database(client, self.settings.mongo)
                audit = AuditLog(
                    db=db,
                    codec=self.codec,
                    producer=self.producer,
                    topic=self.settings.kafka.topic(TopicName.AUDIT_EVENTS),
                )
                return await work(db, audit)
            finally:
                await client.close()

        try:
            return asyncio.run(main())
        finally:
            self.unacknowledged = self.producer.flush(FLUSH_TIMEOUT_S)


class TwinReader:
    """One patient's twin and stored snapshots, as ``novamind twin show|plot|versions`` read them.

    Each read is recorded in the audit log (ACCESS, the actor, the purpose, the view and whether
    anything was found) before it is returned; when the audit log cannot take it, nothing is
    returned (:class:`UsageError`).
    """

    def __init__(self, settings: Settings, *, patient: str, actor: str | None, purpose: str) -> None:
        check_pseudonym(patient)
        self.settings = settings
        self.patient = patient
        self.actor = actor or os_user()
        self.purpose = purpose_of(purpose)

    def twin(self, *, view: str) -> dict[str, Any] | None:
        """The twin document without its state (nor its shadow's)."""
        with self._client() as client:
            doc = client[self.settings.mongo.database].twins.find_one(
                {"_id": self.patient}, {"state": 0, "shadow.state": 0}
            )
        self._audit(view, found=doc is not None)
        return doc

    def snapshots(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The twin's model version fields and its stored snapshots without their models (newest first)."""
        with self._client() as client:
            db = client[self.settings.mongo.database]
            docs = list(db.twin_models.find({"patient_id": self.patient}, {"model": 0}).sort("version", -1))
            twin = db.twins.find_one(
                {"_id": self.patient},
                {
                    "model_version_id": 1,
                    "pinned": 1,
                    "total_state_bytes": 1,
                    "shadow.version_id": 1,
                    "shadow.paired": 1,
                },
            )
        self._audit("versions", found=bool(docs))
        return twin, docs

    def _client(self) -> MongoClient[dict[str, Any]]:
        return MongoClient(self.settings.mongo.uri.get_secret_value())

    def _audit(self, view: str, *, found: bool) -> None:
        operation = TwinOperation(self.settings, "read")

        async def record(db: AsyncDatabase[dict[str, Any]], audit: AuditLog) -> None:
            await audit.record(
                actor=self.actor,
                action=AuditAction.ACCESS,
                purpose=self.purpose,
                resource=f"twins/{view}",
                patient_id=self.patient,
                details={"view": view, "found": str(found).lower(), "via": "cli"},
            )

        try:
            operation.run(record)
        except AuditError as exc:
            raise UsageError(f"not shown: the read could not be audited: {exc}") from exc
        finally:
            if operation.unacknowledged:
                print(
                    "novamind twin: the audit event was not acknowledged by Kafka (audit-events)",
                    file=sys.stderr,
                )


def check_pseudonym(patient: str) -> None:
    if not re.fullmatch(PSEUDONYM_PATTERN, patient):
        raise UsageError(f"{patient!r} is not a patient pseudonym (p_ + 32 hex characters)")


def purpose_of(text: str) -> Purpose:
    """The purpose of use named by ``text`` (any case)."""
    try:
        return Purpose(text.upper())
    except ValueError as exc:
        raise UsageError(f"unknown purpose {text!r}; one of {', '.join(Purpose)}") from exc
