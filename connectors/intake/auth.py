"""Static bearer tokens of patients' apps (development and the demo): one patient each.

Production uses JWT access tokens (``NOVAMIND_AUTH__MODE=jwt``, :mod:`novamind.platform.auth.tokens`);
both implement :class:`novamind.platform.auth.identity.Authenticator`. A static token holds the
scope ``patient/Observation.write`` for its one patient.

Tokens are never stored in clear: the store holds ``sha256(token)`` hex digests. The token
file is a JSON object ``{"<sha256 hex>": "p_<32 hex>"}``; a value may also be an object
``{"patient_id": "p_...", "principal": "app-42"}`` to name the principal for audit events.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from connectors.intake.exceptions import TokenStoreError
from novamind.platform.auth.exceptions import InvalidToken
from novamind.platform.auth.identity import Identity, bearer_token
from novamind.platform.auth.scopes import Scope
from schemas.models import PSEUDONYM_PATTERN

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)
STATIC_TOKEN_SCOPES = (Scope("patient", "Observation", frozenset("cud")),)
__all__ = ["HashedTokenStore", "Principal", "bearer_token", "token_digest"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who holds a token: ``principal_id`` (audit actor) and the one patient it may submit for."""

    principal_id: str
    patient_id: str


def token_digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class HashedTokenStore:
    """Token store over sha256 digests, e.g. loaded from the intake tokens file."""

    def __init__(self, principals: Mapping[str, Principal]) -> None:
        for digest, principal in principals.items():
            if not _DIGEST.match(digest):
                raise TokenStoreError("token digests must be 64 lower-case hex characters")
            if not _PSEUDONYM.match(principal.patient_id):
                raise TokenStoreError(f"token {digest[:8]}... maps to an invalid pseudonym")
        self._principals = dict(principals)

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> HashedTokenStore:
        principals: dict[str, Principal] = {}
        for digest, value in data.items():
            if isinstance(value, str):
                principals[digest] = Principal(f"patient-app:{digest[:16]}", value)
            elif isinstance(value, dict) and isinstance(value.get("patient_id"), str):
                name = value.get("principal") or f"patient-app:{digest[:16]}"
                principals[digest] = Principal(str(name), value["patient_id"])
            else:
                raise TokenStoreError(f"token {digest[:8]}...: value must be a pseudonym")
        return cls(principals)

    @classmethod
    def from_file(cls, path: Path) -> HashedTokenStore:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise TokenStoreError(f"cannot read tokens file {path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise TokenStoreError(f"tokens file {path} is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise TokenStoreError(f"tokens file {path} must hold a JSON object")
        return cls.from_mapping(data)

    def resolve(self, token: str) -> Principal | None:
        # Looking up the digest, not the token, leaks no timing about the secret itself.
        return self._principals.get(token_digest(token))

    async def authenticate(self, token: str) -> Identity:
        principal = self.resolve(token)
        if principal is None:
            raise InvalidToken("unknown_token")
        return Identity(principal.principal_id, principal.patient_id, STATIC_TOKEN_SCOPES)

