"""Errors of the privacy package, under one root."""

from __future__ import annotations


class PrivacyError(Exception):
    """Root of every error raised by ``novamind.platform.privacy``."""


class FieldCryptoError(PrivacyError):
    """Field encryption or decryption failed."""


class KeyConfigurationError(FieldCryptoError):
    """The field keys are missing, malformed or the active key id is unknown."""


class UnknownKeyId(FieldCryptoError):
    """The ciphertext names a key id this process does not hold."""


class DecryptionFailed(FieldCryptoError):
    """Authentication failed: the ciphertext was altered, or the context or key is wrong."""


class AuditError(PrivacyError):
    """An audit event could not be recorded."""


class DuplicateAuditEvent(AuditError):
    """An audit event with this id is already stored (the log is append-only)."""


class PhiInAuditDetails(AuditError):
    """Audit details must carry codes and counts, never identifiers or free text."""


class ReidentificationDenied(PrivacyError):
    """The actor or purpose is not allowed to re-identify patients (the attempt is audited)."""


class PseudonymNotFound(PrivacyError):
    """The re-identification store holds no identifiers for this pseudonym."""


class IdentityConflict(PrivacyError):
    """A pseudonym is already mapped to different identifiers."""


class AclError(PrivacyError):
    """Kafka refused to create an ACL or a SCRAM credential."""
