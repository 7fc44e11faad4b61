"""Keyed pseudonyms for patients and device references (HMAC-SHA256, key from settings)."""

from __future__ import annotations

import hashlib
import hmac

from connectors.exceptions import PseudonymKeyError

MIN_KEY_BYTES = 16


def _digest(key: bytes, message: str) -> str:
    if not key or len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"pseudonym key must be at least {MIN_KEY_BYTES} bytes")
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def pseudonymize(system: str, mrn: str, *, key: bytes) -> str:
    """Return ``'p_' + 32 hex`` of HMAC-SHA256(key, ``system|mrn``).

    >>> pseudonymize("urn:oid:1.2.3", "MRN-1", key=b"k" * 32)[:2]
    'p_'
    """
    if not system or not mrn:
        raise PseudonymKeyError("system and mrn are both required")
    return "p_" + _digest(key, f"{system}|{mrn}")[:32]


def device_ref(vendor: str, external_user_id: str, *, key: bytes) -> str:
    """Return the registry device reference ``'d_' + 32 hex`` for a vendor user/device id."""
    if not vendor or not external_user_id:
        raise PseudonymKeyError("vendor and external_user_id are both required")
    return "d_" + _digest(key, f"device|{vendor}|{external_user_id}")[:32]
