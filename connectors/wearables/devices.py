"""Per-patient device registry, OAuth token store (AES-256-GCM at rest) and sync windows."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connectors.exceptions import DeviceNotLinked, TokenError
from connectors.pseudonyms import device_ref


@dataclass(frozen=True, slots=True)
class LinkedDevice:
    """A vendor account linked to a patient; ``device_ref`` is what records carry."""

    device_ref: str
    patient_id: str
    vendor: str
    external_user_id: str
    time_zone: str
    linked_at: datetime
    last_synced: date | None = None


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)


class DeviceRegistry:
    """Linked devices per patient, optionally persisted to a JSON file."""

    def __init__(self, *, key: bytes, path: Path | None = None) -> None:
        self._key = key
        self._path = path
        self._devices: dict[str, LinkedDevice] = {}
        if path is not None and path.exists():
            for row in json.loads(path.read_text(encoding="utf-8")):
                row["linked_at"] = datetime.fromisoformat(row["linked_at"])
                row["last_synced"] = (date.fromisoformat(row["last_synced"])
                                      if row.get("last_synced") else None)
                self._devices[row["device_ref"]] = LinkedDevice(**row)

    def _save(self) -> None:
        if self._path is not None:
            _write_json(self._path, [asdict(d) for d in self._devices.values()])

    def link(self, patient_id: str, vendor: str, external_user_id: str, *, time_zone: str,
             now: datetime | None = None) -> LinkedDevice:
        """Link (or re-link) a vendor account; returns the device with its stable ref."""
        ref = device_ref(vendor, external_user_id, key=self._key)
        device = LinkedDevice(ref, patient_id, vendor, external_user_id, time_zone,
                              now or datetime.now(UTC))
        self._devices[ref] = device
        self._save()
        return device

    def unlink(self, patient_id: str, ref: str) -> None:
        self.get(patient_id, ref)
        del self._devices[ref]
        self._save()

    def get(self, patient_id: str, ref: str) -> LinkedDevice:
        """The linked device, or ``DeviceNotLinked`` (also when linked to another patient)."""
        device = self._devices.get(ref)
        if device is None or device.patient_id != patient_id:
            raise DeviceNotLinked(f"device {ref} is not linked to patient {patient_id}")
        return device

    def devices(self, patient_id: str) -> list[LinkedDevice]:
        return [d for d in self._devices.values() if d.patient_id == patient_id]

    def mark_synced(self, patient_id: str, ref: str, day: date) -> None:
        self._devices[ref] = replace(self.get(patient_id, ref), last_synced=day)
        self._save()


@dataclass(frozen=True, slots=True)
class OAuthToken:
    access_token: str
    refresh_token: str
    expires_at: datetime
    scope: str = ""

    def expired(self, now: datetime, skew: timedelta = timedelta(seconds=60)) -> bool:
        return now + skew >= self.expires_at


class TokenStore:
    """OAuth tokens per device ref, AES-256-GCM encrypted at rest (AAD = device ref)."""

    def __init__(self, *, key: bytes, key_id: str = "k1", path: Path | None = None) -> None:
        if len(key) != 32:
            raise TokenError("token store key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)
        self._key_id = key_id
        self._path = path
        self._sealed: dict[str, dict[str, str]] = (
            json.loads(path.read_text(encoding="utf-8")) if path and path.exists() else {})

    def put(self, ref: str, token: OAuthToken) -> None:
        plain = json.dumps({**asdict(token), "expires_at": token.expires_at.isoformat()})
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plain.encode(), ref.encode())
        self._sealed[ref] = {"key_id": self._key_id,
                             "nonce": base64.b64encode(nonce).decode(),
                             "ciphertext": base64.b64encode(sealed).decode()}
        if self._path is not None:
            _write_json(self._path, self._sealed)

    def get(self, ref: str) -> OAuthToken:
        sealed = self._sealed.get(ref)
        if sealed is None:
            raise TokenError(f"no token stored for device {ref}")
        try:
            plain = self._aead.decrypt(base64.b64decode(sealed["nonce"]),
                                       base64.b64decode(sealed["ciphertext"]), ref.encode())
        except (InvalidTag, ValueError, KeyError) as exc:
            raise TokenError(f"token for device {ref} cannot be decrypted") from exc
        data = json.loads(plain)
        data["expires_at"] = datetime.fromisoformat(data["expires_at"])
        return OAuthToken(**data)

    def sealed(self, ref: str) -> dict[str, str]:
        """The stored (encrypted) form, for inspection and tests."""
        return dict(self._sealed[ref])


def sync_window(last_synced: date | None, today: date, days_to_sync: int) -> list[date]:
    """Days to fetch: from the last synced day (re-read, it may have been partial) or
    ``days_to_sync - 1`` days back, whichever is later, through ``today``."""
    if days_to_sync < 1:
        raise ValueError("days_to_sync must be >= 1")
    earliest = today - timedelta(days=days_to_sync - 1)
    start = max(earliest, last_synced) if last_synced else earliest
    return [start + timedelta(days=i) for i in range((today - start).days + 1)]
