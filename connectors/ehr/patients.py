"""Which pseudonym a FHIR subject reference stands for, across runs, and what waits for one.

The patient index maps ``(source, Patient logical id)`` to the patient's pseudonym; it is
filled from every Patient the mapper sees. A resource whose subject is not (yet) known is
*parked* with the index and applied in a later run once its Patient has been seen - never
dropped. :class:`MemoryPatientIndex` keeps both in memory (one process, tests);
:class:`MongoPatientIndex` keeps them in MongoDB beside the re-identification vault
(collections ``fhir_patient_index`` and ``fhir_parked`` next to ``reidentification``).

Neither store holds an identifier in the clear: index and parking keys are keyed hashes
(HMAC-SHA256 with the pseudonym key) of source and reference; a parked resource is
field-encrypted when field keys are configured, and otherwise parked without its free text
(``text``, ``note``) and reference ``display`` names, which the mapping never reads.

Released resources (parked earlier, applied now) stay stored until :meth:`commit`, called
once Kafka has acknowledged the run's records; a failed run applies them again next time
(same event ids, so consumers deduplicate).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pymongo import UpdateOne
from pymongo.errors import PyMongoError

from connectors.ehr.reader import RawResource
from connectors.exceptions import ConnectorError, PatientIndexError, PseudonymKeyError
from novamind.platform.privacy.patient_index import INDEX_COLLECTION, canonical_subject
from novamind.platform.privacy.patient_index import index_key as _index_key
from schemas.models import EncryptedText

PARKED_COLLECTION = "fhir_parked"


def index_key(key: bytes, source: str, reference: str) -> str:
    """Keyed hash of (source, canonical Patient reference): no logical id in the clear."""
    try:
        return _index_key(key, source, reference)
    except ValueError as exc:
        raise PseudonymKeyError(str(exc)) from exc


def scrub(resource: dict[str, Any]) -> dict[str, Any]:
    """A copy without narrative, notes and reference display names (for unencrypted parking)."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not (k == "display" and "reference" in value)}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return {k: clean(v) for k, v in resource.items() if k not in ("text", "note")}


class PatientDirectory(Protocol):
    """What :class:`~connectors.ehr.mapping.FhirMapper` needs of a patient index."""

    def lookup(self, reference: str) -> str | None: ...

    def record(self, references: Sequence[str], pid: str, basis: str) -> None: ...

    def park(self, reference: str, raw: RawResource) -> None: ...

    def releasable(self) -> Iterator[RawResource]: ...


@dataclass
class MemoryPatientIndex:
    """The index and the parked resources in memory: across calls of one process."""

    patients: dict[str, str] = field(default_factory=dict)
    parked: dict[str, list[RawResource]] = field(default_factory=dict)
    bases: dict[str, str] = field(default_factory=dict)

    def lookup(self, reference: str) -> str | None:
        return self.patients.get(canonical_subject(reference))

    def record(self, references: Sequence[str], pid: str, basis: str) -> None:
        for ref in references:
            self.patients[canonical_subject(ref)] = pid
        self.bases[pid] = basis

    def park(self, reference: str, raw: RawResource) -> None:
        self.parked.setdefault(canonical_subject(reference), []).append(raw)

    def releasable(self) -> Iterator[RawResource]:
        for ref in [r for r in self.parked if r in self.patients]:
            yield from self.parked.pop(ref)


class Cipher(Protocol):
    def encrypt(self, text: str, *, context: bytes) -> Any: ...

    def decrypt(self, enc: Any, *, context: bytes) -> str: ...


class MongoPatientIndex:
    """The patient index and parked resources in MongoDB, used from synchronous code.

    Every call runs on ``loop`` (a private, non-running event loop, as the connector jobs
    use); look-ups are cached for the run. ``cipher`` (a ``FieldCipher``) encrypts parked
    resources; without one they are :func:`scrub`-bed.
    """

    BATCH = 500

    def __init__(self, *, db: Any, loop: asyncio.AbstractEventLoop, key: bytes, source: str,
                 cipher: Cipher | None = None) -> None:
        self.index = db[INDEX_COLLECTION]
        self.parking = db[PARKED_COLLECTION]
        self.loop = loop
        self.key = key
        self.source = source
        self.cipher = cipher
        self._cache: dict[str, str | None] = {}
        self._released: list[str] = []
        self._unsaved: dict[str, tuple[str, str]] = {}  # index key -> (pseudonym, basis)

    def _run(self, coro: Any) -> Any:
        try:
            return self.loop.run_until_complete(coro)
        except PyMongoError as exc:
            raise PatientIndexError(f"patient index: {type(exc).__name__}") from exc

    def ensure_indexes(self) -> None:
        self._run(self.parking.create_index("patient"))

    def lookup(self, reference: str) -> str | None:
        hashed = index_key(self.key, self.source, reference)
        if hashed not in self._cache:
            doc = self._run(self.index.find_one({"_id": hashed}))
            self._cache[hashed] = doc["pseudonym"] if doc else None
        return self._cache[hashed]

    def record(self, references: Sequence[str], pid: str, basis: str) -> None:
        """Remember the Patient; written in batches of :attr:`BATCH` (and before parked
        resources are looked at), one ``bulk_write`` each."""
        for ref in {canonical_subject(r) for r in references if r.startswith("Patient/")}:
            hashed = index_key(self.key, self.source, ref)
            if self._cache.get(hashed) != pid:
                self._cache[hashed] = pid
                self._unsaved[hashed] = (pid, basis)
        if len(self._unsaved) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the Patients recorded since the last flush."""
        if not self._unsaved:
            return
        now = datetime.now(UTC)
        ops = [UpdateOne({"_id": k}, {"$set": {"pseudonym": p, "basis": b, "updated_at": now}},
                         upsert=True) for k, (p, b) in self._unsaved.items()]
        self._run(self.index.bulk_write(ops, ordered=False))
        self._unsaved.clear()

    def park(self, reference: str, raw: RawResource) -> None:
        data = raw.data or {}
        patient = index_key(self.key, self.source, reference)
        ident = data.get("id") or hashlib.sha256(
            json.dumps(data, sort_keys=True).encode()).hexdigest()
        doc_id = index_key(self.key, self.source, f"{data.get('resourceType')}/{ident}")
        text = json.dumps(data if self.cipher else scrub(data), sort_keys=True)
        body: Any = text
        if self.cipher is not None:
            body = self.cipher.encrypt(text, context=doc_id.encode()).model_dump()
        self._run(self.parking.update_one(
            {"_id": doc_id},
            {"$set": {"patient": patient, "resource": body, "encrypted": self.cipher is not None,
                      "location": raw.location, "full_url": raw.full_url,
                      "parked_at": datetime.now(UTC)}},
            upsert=True))

    def releasable(self) -> Iterator[RawResource]:
        """Parked resources whose Patient is now in the index (kept until :meth:`commit`)."""
        self.flush()
        patients = self._run(self.parking.distinct("patient"))
        known = {d["_id"] for d in self._run(
            self.index.find({"_id": {"$in": patients}}, {"_id": 1}).to_list(None))}
        for patient in sorted(known):
            docs = self._run(self.parking.find({"patient": patient}).to_list(None))
            for doc in docs:
                self._released.append(doc["_id"])
                yield RawResource(doc.get("location") or "parked", self._open(doc),
                                  doc.get("full_url"))

    def _open(self, doc: dict[str, Any]) -> dict[str, Any]:
        body = doc["resource"]
        if doc.get("encrypted"):
            if self.cipher is None:
                raise ConnectorError("parked resources are encrypted: field keys are needed")
            body = self.cipher.decrypt(EncryptedText.model_validate(body), context=doc["_id"].encode())
        data: dict[str, Any] = json.loads(body)
        return data

    def commit(self) -> None:
        """Forget the released resources (their records were acknowledged)."""
        self.flush()
        if self._released:
            self._run(self.parking.delete_many({"_id": {"$in": self._released}}))
            self._released.clear()
