"""The FHIR patient index's keys: keyed hashes of (source system, Patient reference).

``fhir-sync`` and ``connect fhir`` record every Patient they see under this key (MongoDB
collection ``fhir_patient_index``, beside the re-identification vault), so no logical id is
stored in the clear; token verification looks a FHIR ``patient`` claim up the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

INDEX_COLLECTION = "fhir_patient_index"
_PSEUDONYM = re.compile(r"^p_[0-9a-f]{32}$")


def canonical_subject(reference: str) -> str:
    """``urn:uuid:X`` (Synthea's Bundle-local Patient reference) -> ``Patient/X``; else as is."""
    if reference.startswith("urn:uuid:"):
        return "Patient/" + reference.removeprefix("urn:uuid:")
    return reference


def index_key(key: bytes, source: str, reference: str) -> str:
    """Keyed hash of (source, canonical Patient reference); the key is the pseudonym key."""
    if len(key) < 16:
        raise ValueError("pseudonym key must be at least 16 bytes")
    text = f"fhir-patient|{source}|{canonical_subject(reference)}"
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


class MongoPatientLookup:
    """Reads a pseudonym from the index (async; one ``find_one`` by ``_id``)."""

    def __init__(self, *, db: Any, key: bytes, source: str) -> None:
        self._index = db[INDEX_COLLECTION]
        self._key = key
        self._source = source

    async def __call__(self, reference: str) -> str | None:
        doc = await self._index.find_one({"_id": index_key(self._key, self._source, reference)})
        pseudonym = doc.get("pseudonym") if doc else None
        return pseudonym if isinstance(pseudonym, str) and _PSEUDONYM.match(pseudonym) else None
