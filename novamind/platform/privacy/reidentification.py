"""The restricted re-identification store: pseudonym -> (source system, MRN), encrypted.

Connectors :meth:`~ReidentificationStore.remember` the identifiers behind each pseudonym they
mint; both identifiers are field-encrypted (AES-256-GCM bound to the pseudonym and field), so
the MongoDB collection ``reidentification`` holds no readable identifier. Only actors named
by the policy may :meth:`~ReidentificationStore.lookup` a pseudonym, for an allowed purpose,
and every look-up - allowed, denied or not found - writes an audit event (REIDENTIFY) before
any identifier is returned. If the audit event cannot be written, nothing is returned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from novamind.platform.privacy.audit import AuditLog, Purpose
from novamind.platform.privacy.exceptions import IdentityConflict, PseudonymNotFound, ReidentificationDenied
from novamind.platform.privacy.fieldcrypt import FieldCipher, field_context
from novamind.platform.settings import SecuritySettings
from schemas.models import PSEUDONYM_PATTERN, AuditAction, AuditOutcome, EncryptedText

REID_COLLECTION = "reidentification"
RESOURCE = f"mongodb:{REID_COLLECTION}"
DEFAULT_PURPOSES = frozenset({Purpose.TREATMENT.value, Purpose.PATIENT_SAFETY.value})
_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)
_KNOWN_CACHE_LIMIT = 100_000


@dataclass(frozen=True)
class Identity:
    """The identifiers behind a pseudonym; ``repr`` never shows them (logs, tracebacks)."""

    system: str = field(repr=False)
    mrn: str = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class ReidentificationPolicy:
    """Who may re-identify, and why. Empty ``allowed_actors`` denies everyone."""

    allowed_actors: frozenset[str]
    allowed_purposes: frozenset[str] = DEFAULT_PURPOSES

    @classmethod
    def from_settings(cls, security: SecuritySettings) -> ReidentificationPolicy:
        """From ``security.reidentification_actors`` / ``reidentification_purposes`` when the
        settings model declares them; fails closed (nobody allowed) when it does not."""
        actors: Iterable[str] = getattr(security, "reidentification_actors", None) or ()
        purposes: Iterable[str] = getattr(security, "reidentification_purposes", None) or ()
        return cls(
            allowed_actors=frozenset(actors),
            allowed_purposes=frozenset(purposes) or DEFAULT_PURPOSES,
        )

    def denial(self, *, actor: str, purpose: str) -> str | None:
        """Why ``actor`` may not re-identify for ``purpose`` (a short code), or None."""
        if actor not in self.allowed_actors:
            return "actor_not_allowed"
        if purpose not in self.allowed_purposes:
            return "purpose_not_allowed"
        return None


class ReidentificationStore:
    """Write and (under policy, audited) read the pseudonym -> identifiers mapping."""

    def __init__(
        self,
        *,
        db: AsyncDatabase[dict[str, Any]],
        cipher: FieldCipher,
        audit: AuditLog,
        policy: ReidentificationPolicy,
    ) -> None:
        self._collection = db[REID_COLLECTION]
        self._cipher = cipher
        self._audit = audit
        self._policy = policy
        self._known: set[str] = set()

    async def remember(self, pseudonym: str, system: str, mrn: str) -> bool:
        """Store the identifiers of ``pseudonym``; True when newly stored. Idempotent; a
        pseudonym already mapped to other identifiers raises :class:`IdentityConflict`."""
        if not _PSEUDONYM.match(pseudonym):
            raise ValueError("not a patient pseudonym (p_ + 32 hex characters)")
        if not system or not mrn:
            raise ValueError("system and MRN must not be empty")
        if pseudonym in self._known:
            return False
        document = {
            "system": self._encrypt(pseudonym, "system", system),
            "mrn": self._encrypt(pseudonym, "mrn", mrn),
            "created_at": datetime.now(UTC),
        }
        try:
            result = await self._collection.update_one(
                {"_id": pseudonym}, {"$setOnInsert": document}, upsert=True
            )
            inserted = result.upserted_id is not None
        except DuplicateKeyError:  # a concurrent writer inserted it first
            inserted = False
        if not inserted:
            stored = await self._collection.find_one({"_id": pseudonym})
            if stored is None or self._identity(pseudonym, stored) != Identity(system, mrn):
                raise IdentityConflict(f"pseudonym {pseudonym} is already mapped to other identifiers")
        if len(self._known) >= _KNOWN_CACHE_LIMIT:
            self._known.clear()
        self._known.add(pseudonym)
        return inserted

    async def lookup(
        self, pseudonym: str, *, actor: str, purpose: str, details: Mapping[str, str] | None = None
    ) -> Identity:
        """The identifiers of ``pseudonym`` for an allowed actor and purpose; always audited
        (``details`` are added to the audit event, e.g. the operator's OS account).

        Raises :class:`ReidentificationDenied` (audited DENIED) or :class:`PseudonymNotFound`
        (audited ALLOWED with ``found=false``).
        """
        valid = bool(_PSEUDONYM.match(pseudonym))

        async def audit(outcome: AuditOutcome, **extra: str) -> None:
            await self._audit.record(
                actor=actor,
                action=AuditAction.REIDENTIFY,
                purpose=purpose,
                resource=RESOURCE,
                outcome=outcome,
                patient_id=pseudonym if valid else None,
                details={**(details or {}), **extra},
            )

        reason = self._policy.denial(actor=actor, purpose=purpose)
        if reason is not None:
            await audit(AuditOutcome.DENIED, reason=reason)
            raise ReidentificationDenied(
                f"{actor!r} may not re-identify patients for purpose {purpose!r} ({reason})"
            )
        stored = await self._collection.find_one({"_id": pseudonym}) if valid else None
        await audit(
            AuditOutcome.ALLOWED, found=str(stored is not None).lower(), pseudonym_valid=str(valid).lower()
        )
        if stored is None:
            raise PseudonymNotFound(f"no identifiers stored for {pseudonym!r}")
        return self._identity(pseudonym, stored)

    def _encrypt(self, pseudonym: str, name: str, value: str) -> dict[str, Any]:
        enc = self._cipher.encrypt(value, context=field_context(pseudonym, REID_COLLECTION, name))
        return enc.model_dump()

    def _identity(self, pseudonym: str, stored: dict[str, Any]) -> Identity:
        def plain(name: str) -> str:
            enc = EncryptedText.model_validate(stored[name])
            return self._cipher.decrypt(enc, context=field_context(pseudonym, REID_COLLECTION, name))

        return Identity(system=plain("system"), mrn=plain("mrn"))
