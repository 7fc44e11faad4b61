"""Field encryption: round trip, tamper detection, context binding, rotation, key handling."""

from __future__ import annotations

import base64
import doctest
import json
import os

import pytest
from pydantic import SecretStr

from novamind.platform.privacy import fieldcrypt
from novamind.platform.privacy.exceptions import DecryptionFailed, KeyConfigurationError, UnknownKeyId
from novamind.platform.privacy.fieldcrypt import FieldCipher, field_context, generate_key
from novamind.platform.settings import SecuritySettings
from schemas.models import EncryptedText

ALICE = "p_" + "a" * 32
BOB = "p_" + "b" * 32
NOTES = field_context(ALICE, "SymptomReport", "notes")


def cipher_factory(*ids: str, active: str | None = None) -> FieldCipher:
    keys = {key_id: os.urandom(32) for key_id in ids or ("k1",)}
    return FieldCipher(keys, active or next(iter(keys)))


def test_round_trip_uses_active_key_and_fresh_nonces() -> None:
    cipher = cipher_factory("k1")
    first = cipher.encrypt("woke at 4am, anxious", context=NOTES)
    second = cipher.encrypt("woke at 4am, anxious", context=NOTES)
    assert first.key_id == "k1" and len(first.nonce) == 12
    assert first.nonce != second.nonce and first.ciphertext != second.ciphertext
    assert b"anxious" not in first.ciphertext
    assert len(first.ciphertext) == len(b"woke at 4am, anxious") + 16  # GCM tag inside
    assert cipher.decrypt(first, context=NOTES) == "woke at 4am, anxious"


def test_unicode_and_empty_text() -> None:
    cipher = cipher_factory()
    for text in ("", "Schlaflosigkeit – ängstlich 😟"):
        assert cipher.decrypt(cipher.encrypt(text, context=NOTES), context=NOTES) == text


@pytest.mark.parametrize("part", ["ciphertext", "nonce"])
def test_any_flipped_bit_is_detected(part: str) -> None:
    cipher = cipher_factory()
    enc = cipher.encrypt("sensitive", context=NOTES)
    raw = bytearray(getattr(enc, part))
    raw[len(raw) // 2] ^= 0x01
    tampered = enc.model_copy(update={part: bytes(raw)})
    with pytest.raises(DecryptionFailed, match="failed authentication"):
        cipher.decrypt(tampered, context=NOTES)


def test_truncated_ciphertext_and_bad_nonce_length_are_refused() -> None:
    cipher = cipher_factory()
    enc = cipher.encrypt("sensitive", context=NOTES)
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(enc.model_copy(update={"ciphertext": enc.ciphertext[:-1]}), context=NOTES)
    with pytest.raises(DecryptionFailed, match="nonce"):
        cipher.decrypt(enc.model_copy(update={"nonce": enc.nonce[:8]}), context=NOTES)


@pytest.mark.parametrize(
    "other",
    [
        field_context(BOB, "SymptomReport", "notes"),  # moved to another patient
        field_context(ALICE, "ClinicalEvent", "narrative"),  # moved to another record type
        field_context(ALICE, "SymptomReport", "context"),  # moved to another field
        b"",
    ],
)
def test_ciphertext_cannot_move_to_another_context(other: bytes) -> None:
    cipher = cipher_factory()
    enc = cipher.encrypt("sensitive", context=NOTES)
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(enc, context=other)


def test_context_encoding_is_unambiguous() -> None:
    assert field_context("ab", "c", "d") != field_context("a", "bc", "d")


def test_rotation_reencrypts_nothing_and_old_data_still_decrypts() -> None:
    old = cipher_factory("2025-01", "2026-01", active="2025-01")
    enc_old = old.encrypt("before rotation", context=NOTES)
    rotated = old.with_active("2026-01")
    enc_new = rotated.encrypt("after rotation", context=NOTES)
    assert enc_new.key_id == "2026-01"
    assert rotated.decrypt(enc_old, context=NOTES) == "before rotation"
    assert old.decrypt(enc_new, context=NOTES) == "after rotation"
    assert rotated.needs_rotation(enc_old) and not rotated.needs_rotation(enc_new)
    migrated = rotated.reencrypt(enc_old, context=NOTES)
    assert migrated.key_id == "2026-01"
    assert rotated.decrypt(migrated, context=NOTES) == "before rotation"
    assert rotated.reencrypt(enc_new, context=NOTES) is enc_new


def test_key_id_is_authenticated() -> None:
    key = os.urandom(32)
    cipher = FieldCipher({"a": key, "b": key}, "a")  # same key material under two ids
    enc = cipher.encrypt("sensitive", context=NOTES)
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(enc.model_copy(update={"key_id": "b"}), context=NOTES)


def test_unknown_key_id_is_a_typed_error() -> None:
    enc = cipher_factory("retired").encrypt("sensitive", context=NOTES)
    with pytest.raises(UnknownKeyId, match="retired"):
        cipher_factory("current").decrypt(enc, context=NOTES)


@pytest.mark.parametrize(
    ("keys", "active", "message"),
    [
        ({}, "k1", "no field-encryption keys"),
        ({"k1": b"short"}, "k1", "AES-256 needs 32"),
        ({"k1": bytes(32)}, "k2", "not among"),
        ({"": bytes(32)}, "", "empty id"),
    ],
)
def test_bad_key_configuration(keys: dict[str, bytes], active: str, message: str) -> None:
    with pytest.raises(KeyConfigurationError, match=message):
        FieldCipher(keys, active)
    with pytest.raises(KeyConfigurationError):
        cipher_factory("k1").with_active("nope")


def test_from_settings_reads_env_keys_and_key_file(tmp_path: os.PathLike[str]) -> None:
    from pathlib import Path

    key_file = Path(tmp_path) / "field-keys.json"
    file_key = generate_key()
    key_file.write_text(json.dumps({"k2": file_key}))
    writer = FieldCipher({"k2": base64.b64decode(file_key)}, "k2")
    enc = writer.encrypt("from the file key", context=NOTES)
    security = SecuritySettings(
        field_keys={"k1": SecretStr(generate_key())},
        field_keys_file=key_file,
        active_field_key_id="k1",
    )
    cipher = FieldCipher.from_settings(security)
    assert cipher.key_ids == {"k1", "k2"} and cipher.active_key_id == "k1"
    assert cipher.decrypt(enc, context=NOTES) == "from the file key"


def test_from_settings_errors_are_typed(tmp_path: os.PathLike[str]) -> None:
    from pathlib import Path

    with pytest.raises(KeyConfigurationError, match="ACTIVE_FIELD_KEY_ID"):
        FieldCipher.from_settings(SecuritySettings(field_keys={"k1": SecretStr(generate_key())}))
    with pytest.raises(KeyConfigurationError, match="could not read"):
        FieldCipher.from_settings(
            SecuritySettings(field_keys_file=Path(tmp_path) / "missing.json", active_field_key_id="k1")
        )
    with pytest.raises(KeyConfigurationError, match="no field-encryption keys"):
        FieldCipher.from_settings(SecuritySettings(active_field_key_id="k1"))


def test_encrypted_text_survives_the_avro_codec() -> None:
    from schemas.codec import AvroCodec
    from schemas.models import SymptomReport

    cipher = cipher_factory()
    codec = AvroCodec()
    notes = cipher.encrypt("could not get out of bed", context=NOTES)
    report = SymptomReport.model_validate(
        {
            "event_id": "e1",
            "patient_id": ALICE,
            "event_time": "2026-01-02T03:04:05Z",
            "received_time": "2026-01-02T03:04:06Z",
            "source": "intake",
            "symptom_type": "FATIGUE",
            "severity": 6,
            "notes": notes.model_dump(),
        }
    )
    decoded = codec.decode(codec.encode(report))
    assert isinstance(decoded, SymptomReport) and isinstance(decoded.notes, EncryptedText)
    assert cipher.decrypt(decoded.notes, context=NOTES) == "could not get out of bed"


def test_module_examples_run() -> None:
    result = doctest.testmod(fieldcrypt)
    assert result.attempted > 0 and result.failed == 0
