"""The extraction audit: one COLLECT event per patient of a run, before their first record."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from pymongo.errors import PyMongoError

from connectors.exceptions import StoreUnavailable
from connectors.jobs.model import Job
from novamind.platform.mongo import database, mongo_client
from novamind.platform.privacy.audit import MAX_DETAIL_LENGTH, AuditLog
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from schemas.models import AuditAction
from schemas.topics import TopicName


def scope_details(scopes: str) -> dict[str, str]:
    """Scopes as audit details of at most 128 characters each: ``scopes``, ``scopes_2``, ...

    >>> scope_details("activity heartrate sleep")
    {'scopes': 'activity heartrate sleep'}
    """
    chunks: list[str] = []
    for word in scopes.split():
        if chunks and len(chunks[-1]) + 1 + len(word) <= MAX_DETAIL_LENGTH:
            chunks[-1] += " " + word
        else:
            chunks.append(word[:MAX_DETAIL_LENGTH])
    return {("scopes" if i == 0 else f"scopes_{i + 1}"): c for i, c in enumerate(chunks)}


class ExtractionAudit:
    """Stores one COLLECT event per patient of the run, before that patient's first record.

    Its details name the connector, the source system, the run and the scopes; for FHIR also
    what the pseudonym was made of (``identity``). No PHI goes into them.
    """

    def __init__(
        self, *, loop: asyncio.AbstractEventLoop, log: Any, client: Any, job: Job, purpose: str
    ) -> None:
        self.loop, self.log, self.client, self.job, self.purpose = loop, log, client, job, purpose
        self.details = {
            "connector": job.label,
            "system": job.system[:MAX_DETAIL_LENGTH],
            "run": uuid.uuid4().hex[:16],
            **scope_details(job.scopes),
        }
        self.recorded = 0

    @classmethod
    def open(
        cls, settings: Settings, *, loop: asyncio.AbstractEventLoop, producer: Any, job: Job, purpose: str
    ) -> ExtractionAudit:
        """Connect to the audit log (MongoDB, then ``audit-events``); ``StoreUnavailable`` when down."""
        client = mongo_client(settings.mongo, app_name="novamind-connect")
        log = AuditLog(
            db=database(client, settings.mongo),
            codec=AvroCodec.from_settings(settings),
            producer=producer,
            topic=settings.kafka.topic(TopicName.AUDIT_EVENTS),
        )
        try:
            loop.run_until_complete(log.ensure_indexes())
        except PyMongoError as exc:
            loop.run_until_complete(client.close())
            raise StoreUnavailable(f"the audit log is unavailable: {type(exc).__name__}") from exc
        return cls(loop=loop, log=log, client=client, job=job, purpose=purpose)

    def __call__(self, patient_id: str) -> None:
        details = self.details
        basis = self.job.identity(patient_id) if self.job.identity is not None else None
        if basis is not None:  # FHIR: mrn, identifier or logical-id
            details = {**details, "identity": basis}
        self.loop.run_until_complete(
            self.log.record(
                actor=self.job.actor,
                action=AuditAction.COLLECT,
                purpose=self.purpose,
                resource=self.job.system,
                patient_id=patient_id,
                details=details,
            )
        )
        self.recorded += 1

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
