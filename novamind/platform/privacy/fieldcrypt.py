"""Field-level encryption of free text and identifiers: AES-256-GCM with a key id.

Each value gets a fresh random 96-bit nonce; the GCM tag (16 bytes) is inside ``ciphertext``.
The associated data binds a ciphertext to where it belongs, so a value copied into another
patient's record or another field no longer decrypts: build it with :func:`field_context`
(patient pseudonym, record name, field name). The key id is authenticated as well.

Keys come only from settings or secret files (:meth:`FieldCipher.from_settings`). Rotation:
add a new key, make it active; new values use it, old values still decrypt with their own
key id, and nothing is re-encrypted (:meth:`FieldCipher.reencrypt` exists for a lazy migration).

Examples
--------
>>> import os
>>> cipher = FieldCipher({"k1": os.urandom(32)}, active_key_id="k1")
>>> context = field_context("p_" + "0" * 32, "SymptomReport", "notes")
>>> enc = cipher.encrypt("slept badly", context=context)
>>> enc.key_id, len(enc.nonce)
('k1', 12)
>>> cipher.decrypt(enc, context=context)
'slept badly'
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from novamind.platform.privacy.exceptions import DecryptionFailed, KeyConfigurationError, UnknownKeyId
from novamind.platform.settings import SecuritySettings
from schemas.models import EncryptedText

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, the GCM standard nonce
AAD_VERSION = b"novamind-field-v1"


def field_context(pseudonym: str, record: str, field: str) -> bytes:
    """Associated data for one field of one patient's record (length-prefixed, unambiguous)."""
    return _length_prefixed(pseudonym.encode(), record.encode(), field.encode())


def generate_key() -> str:
    """A new random key, base64 as ``field_keys`` and the key file expect (for operators)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


class FieldCipher:
    """Encrypt and decrypt text fields with a set of AES-256 keys, one of them active."""

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if not keys:
            raise KeyConfigurationError("no field-encryption keys configured")
        for key_id, key in keys.items():
            if not key_id:
                raise KeyConfigurationError("a field key has an empty id")
            if len(key) != KEY_BYTES:
                raise KeyConfigurationError(
                    f"field key {key_id!r} has {len(key)} bytes; AES-256 needs {KEY_BYTES}"
                )
        if active_key_id not in keys:
            raise KeyConfigurationError(
                f"the active field key id {active_key_id!r} is not among the configured keys {sorted(keys)}"
            )
        self._aeads = {key_id: AESGCM(bytes(key)) for key_id, key in keys.items()}
        self.active_key_id = active_key_id

    @classmethod
    def from_settings(cls, security: SecuritySettings) -> FieldCipher:
        """The cipher of ``NOVAMIND_SECURITY__FIELD_KEYS``/``..._FIELD_KEYS_FILE`` and
        ``NOVAMIND_SECURITY__ACTIVE_FIELD_KEY_ID``."""
        try:
            keys = security.field_key_map()
        except (OSError, ValueError, binascii.Error) as exc:
            raise KeyConfigurationError(f"could not read the field keys: {exc}") from exc
        if security.active_field_key_id is None:
            raise KeyConfigurationError("no active field key: set NOVAMIND_SECURITY__ACTIVE_FIELD_KEY_ID")
        return cls(keys, security.active_field_key_id)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._aeads)

    def with_active(self, key_id: str) -> FieldCipher:
        """A cipher over the same keys with another active key (rotation)."""
        clone = object.__new__(FieldCipher)
        if key_id not in self._aeads:
            raise KeyConfigurationError(f"cannot activate unknown field key {key_id!r}")
        clone._aeads = self._aeads
        clone.active_key_id = key_id
        return clone

    def encrypt(self, text: str, *, context: bytes) -> EncryptedText:
        """Encrypt ``text`` with the active key, bound to ``context``."""
        key_id = self.active_key_id
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._aeads[key_id].encrypt(nonce, text.encode(), _aad(key_id, context))
        return EncryptedText(key_id=key_id, nonce=nonce, ciphertext=ciphertext)

    def decrypt(self, enc: EncryptedText, *, context: bytes) -> str:
        """The plaintext; :class:`UnknownKeyId` or :class:`DecryptionFailed` otherwise."""
        aead = self._aeads.get(enc.key_id)
        if aead is None:
            raise UnknownKeyId(f"no field key with id {enc.key_id!r} is configured")
        if len(enc.nonce) != NONCE_BYTES:
            raise DecryptionFailed(f"nonce must be {NONCE_BYTES} bytes, got {len(enc.nonce)}")
        try:
            plain = aead.decrypt(enc.nonce, enc.ciphertext, _aad(enc.key_id, context))
        except InvalidTag as exc:
            raise DecryptionFailed(
                f"field ciphertext (key {enc.key_id!r}) failed authentication: altered, or "
                "decrypted with the wrong context"
            ) from exc
        return plain.decode()

    def needs_rotation(self, enc: EncryptedText) -> bool:
        return enc.key_id != self.active_key_id

    def reencrypt(self, enc: EncryptedText, *, context: bytes) -> EncryptedText:
        """The same plaintext under the active key (unchanged when already active)."""
        if not self.needs_rotation(enc):
            return enc
        return self.encrypt(self.decrypt(enc, context=context), context=context)


def _aad(key_id: str, context: bytes) -> bytes:
    return _length_prefixed(AAD_VERSION, key_id.encode(), context)


def _length_prefixed(*parts: bytes) -> bytes:
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)
