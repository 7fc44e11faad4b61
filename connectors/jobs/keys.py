"""The keys a connector job needs: the pseudonym key and, when configured, the field cipher."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.exceptions import FieldKeyError, PseudonymKeyError
from connectors.pseudonyms import MIN_KEY_BYTES
from novamind.platform.privacy.exceptions import KeyConfigurationError
from novamind.platform.privacy.fieldcrypt import FieldCipher
from novamind.platform.settings import Settings


def pseudonym_key(settings: Settings) -> bytes:
    """The HMAC key of patient pseudonyms; ``PseudonymKeyError`` when missing or too short."""
    try:
        key = settings.security.pseudonym_key_bytes()
    except (ValueError, OSError) as exc:
        raise PseudonymKeyError(str(exc)) from exc
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"the pseudonym key must be at least {MIN_KEY_BYTES} bytes")
    return key


def field_cipher(settings: Settings) -> FieldCipher | None:
    """The field cipher when field keys are configured (FHIR free text and parked resources
    are then encrypted), else None (free text is dropped); ``FieldKeyError`` when unusable."""
    security = settings.security
    if not security.field_keys and security.field_keys_file is None:
        return None
    try:
        return FieldCipher.from_settings(security)
    except KeyConfigurationError as exc:
        raise FieldKeyError(str(exc)) from exc


def encryptor(cipher: FieldCipher | None) -> Callable[[str, bytes], dict[str, Any]] | None:
    """The FHIR mapper's ``encrypt_text``: the cipher's envelope as a contract record."""
    if cipher is None:
        return None
    return lambda text, context: cipher.encrypt(text, context=context).model_dump()
