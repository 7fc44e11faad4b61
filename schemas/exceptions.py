"""Typed errors of the contracts package, all under one root, :class:`SchemaError`.

Decode errors carry the message length and a short hex prefix (at most the framing header),
never the payload: error text goes to logs and dead-letter reasons.
"""

from __future__ import annotations


def header_length(data: bytes) -> int:
    """Bytes of ``data`` that are framing, not payload: 10 single-object, 5 Confluent, else 2."""
    if data[:2] == b"\xc3\x01":
        return 10
    return 5 if data[:1] == b"\x00" else 2


class SchemaError(Exception):
    """Root of every error raised by ``schemas``."""


class CatalogError(SchemaError):
    """The .avsc files are inconsistent (unknown reference, missing history, ...)."""


class UnknownRecord(SchemaError):
    """No record of that name in the catalog."""


class WrongTopic(SchemaError):
    """A record was sent to a topic whose registry entry does not carry that record type."""


class EncodeError(SchemaError):
    """A record could not be encoded; names the failing fields, never their values."""


class RegistryError(SchemaError):
    """The schema registry failed or answered something unexpected (retryable)."""


class SchemaNotFound(RegistryError):
    """The registry does not know that schema id or subject (not retryable)."""


class BadRegistryAnswer(RegistryError):
    """The registry answered, but not as the Confluent API does (wrong URL or a proxy page?)."""


class IncompatibleSchema(RegistryError):
    """The registry refused a schema version: it breaks the subject's compatibility rule."""


class DecodeError(SchemaError):
    """Bytes could not be decoded. Carries ``length`` and ``prefix_hex`` (header only)."""

    def __init__(self, reason: str, *, data: bytes) -> None:
        self.reason = reason
        self.length = len(data)
        self.prefix_hex = bytes(data[: header_length(data)]).hex()
        super().__init__(f"{reason} (length={self.length}, prefix={self.prefix_hex or '-'})")


class BadFraming(DecodeError):
    """Neither single-object (C3 01) nor Confluent (00) framing, or a header cut short."""


class UnknownFingerprint(DecodeError):
    """Single-object fingerprint of no known schema version."""


class UnknownSchemaId(DecodeError):
    """Confluent schema id unknown to the registry, or no registry configured."""


class TruncatedBody(DecodeError):
    """The body ended before the record did."""


class TrailingBytes(DecodeError):
    """Bytes left over after the record: wrong schema or corrupt message."""


class CorruptBody(DecodeError):
    """The body is not a valid encoding of the writer schema."""


class ContractViolation(DecodeError):
    """Decoded record breaks a model constraint (e.g. severity 11); names fields, not values."""


class AssessmentError(SchemaError):
    """Questionnaire answers cannot be scored."""


class UnknownInstrument(AssessmentError):
    """Instrument is UNKNOWN or not scorable."""


class ItemCountError(AssessmentError):
    """Wrong number of item answers for the instrument."""


class ItemRangeError(AssessmentError):
    """An item answer outside 0-3."""
