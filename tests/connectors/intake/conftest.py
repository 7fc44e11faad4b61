"""Fakes and factories for the intake unit tests (no broker: the producer is in-process)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.intake import HashedTokenStore, IntakeSettings, create_intake_app, token_digest
from connectors.intake.idempotency import MemorySubmissionLedger
from novamind.platform.auth.identity import Authenticator
from novamind.platform.privacy.fieldcrypt import FieldCipher, field_context
from novamind.platform.producer import DeliveryFailed
from schemas.codec import AvroCodec
from schemas.models import AuditEvent, EncryptedText

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
PATIENT_A = "p_" + "a1" * 16
PATIENT_B = "p_" + "b2" * 16
TOKEN_A = "token-for-patient-a-0123456789"
TOKEN_B = "token-for-patient-b-9876543210"
TOPIC = "patient-reports"
FIELD_KEY = bytes(range(32))


@dataclass
class Sent:
    topic: str
    key: bytes
    value: bytes


@dataclass
class FakeProducer:
    """Records deliveries; ``fail`` refuses them, ``gate`` holds the ack until it is set."""

    fail: bool = False
    gate: asyncio.Event | None = None
    sent: list[Sent] = field(default_factory=list)
    pending: int = 0

    async def deliver(self, topic: str, *, key: bytes, value: bytes, timeout: float = 30.0) -> None:
        self.pending += 1
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.fail:
                raise DeliveryFailed("broker unreachable")
            self.sent.append(Sent(topic, key, value))
        finally:
            self.pending -= 1


def cipher() -> FieldCipher:
    """The real field cipher with a fixed test key."""
    return FieldCipher({"k1": FIELD_KEY}, active_key_id="k1")


def decrypt_notes(value: EncryptedText, patient_id: str) -> str:
    return cipher().decrypt(value, context=field_context(patient_id, "SymptomReport", "notes"))


@dataclass
class FakeAudit:
    fail: bool = False
    events: list[AuditEvent] = field(default_factory=list)

    async def append(self, event: AuditEvent) -> None:
        if self.fail:
            raise ConnectionError("audit store down")
        self.events.append(event)


@dataclass
class Intake:
    """One running intake with its fakes."""

    client: TestClient[Any, Any]
    producer: FakeProducer
    audit: FakeAudit
    codec: AvroCodec

    async def post(
        self, path: str, body: Any, *, token: str | None = TOKEN_A, patient: str = PATIENT_A
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.post(f"/v1/patients/{patient}/{path}", json=body, headers=headers)


def tokens() -> HashedTokenStore:
    return HashedTokenStore.from_mapping(
        {
            token_digest(TOKEN_A): {"patient_id": PATIENT_A, "principal": "app-a"},
            token_digest(TOKEN_B): PATIENT_B,
        }
    )


def symptom_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "submission_id": "sub-1",
        "symptom_type": "ANXIETY",
        "severity": 6,
        "event_time": "2026-03-02T11:30:00+01:00",
        "context": "work",
        "triggers": ["deadline"],
        "notes": "could not sleep, worried about my sister",
    }
    body.update(overrides)
    return body


def assessment_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "submission_id": "as-1",
        "instrument": "PHQ9",
        "item_responses": [1] * 9,
        "event_time": "2026-03-02T11:00:00Z",
    }
    body.update(overrides)
    return body


@pytest.fixture
async def intake_factory() -> AsyncIterator[Callable[..., Any]]:
    """Start intakes on 127.0.0.1 with fresh fakes; all are closed at teardown."""
    clients: list[TestClient[Any, Any]] = []

    async def start(
        *,
        producer: FakeProducer | None = None,
        audit: FakeAudit | None = None,
        authenticator: Authenticator | None = None,
        lateness_days: int = 30,
        ledger: MemorySubmissionLedger | None = None,
        clock: Callable[[], dt.datetime] = lambda: NOW,
        **settings: Any,
    ) -> Intake:
        producer = producer or FakeProducer()
        audit = audit or FakeAudit()
        codec = AvroCodec()
        app = create_intake_app(
            settings=IntakeSettings(topic=TOPIC, **settings),
            producer=producer,
            codec=codec,
            tokens=authenticator or tokens(),
            encryptor=cipher(),
            audit=audit,
            clock=clock,
            lateness_days=lateness_days,
            ledger=ledger,
        )
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return Intake(client, producer, audit, codec)

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def intake(intake_factory: Callable[..., Any]) -> Intake:
    return await intake_factory()
