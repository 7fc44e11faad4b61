"""What the intake needs from its collaborators: small protocols, wired in ``main``.

The real implementations are ``novamind.platform.producer.EventProducer``, ``schemas.codec.AvroCodec``,
``novamind.platform.privacy.fieldcrypt.FieldCipher`` and ``novamind.platform.privacy.audit.AuditLog``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol

from schemas.models import AuditEvent, EncryptedText, Record

Clock = Callable[[], dt.datetime]


class Deliverer(Protocol):
    """Produces one record and returns only once Kafka has acknowledged it."""

    async def deliver(self, topic: str, *, key: bytes, value: bytes, timeout: float = ...) -> None:
        ...


class Encoder(Protocol):
    """Turns a contract record into framed Avro bytes."""

    def encode(self, model: Record, *, topic: str | None = None) -> bytes: ...


class TextEncryptor(Protocol):
    """Field-level encryption of free text, bound to ``context`` (patient, record, field)."""

    def encrypt(self, text: str, *, context: bytes) -> EncryptedText: ...


class AuditSink(Protocol):
    """Durably records one audit event."""

    async def append(self, event: AuditEvent) -> None: ...


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
