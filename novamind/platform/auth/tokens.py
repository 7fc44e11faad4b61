"""JWT access tokens of the organisation's identity provider, verified by PyJWT.

Checked, in order: the header names RS256 or ES256 (``none``, HS256 and the rest are refused
before any key is touched) and a ``kid`` of the JWKS; the signature with that key, bound to
its algorithm; ``iss`` and ``aud`` exactly; ``exp`` (required), ``nbf`` and ``iat`` with a
small leeway; ``sub`` present. The ``patient`` claim (a pseudonym, or a FHIR Patient id found
in the patient index) says whom a ``patient/`` scope speaks for.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import jwt

from novamind.platform.auth.exceptions import InvalidToken, KeySetError
from novamind.platform.auth.identity import Identity
from novamind.platform.auth.keys import ALGORITHMS, JwksKeys
from novamind.platform.auth.scopes import parse_scopes
from novamind.platform.privacy.patient_index import MongoPatientLookup
from novamind.platform.settings import AuthSettings, SecuritySettings
from schemas.models import PSEUDONYM_PATTERN

_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)
_SAFE_SUBJECT = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_FHIR_ID = re.compile(r"^[A-Za-z0-9.-]{1,64}$")
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token_expired"),
    (jwt.ImmatureSignatureError, "token_not_yet_valid"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidAlgorithmError, "algorithm_not_allowed"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
)


def principal_of(issuer: str, subject: str) -> str:
    """The audit actor of a token's subject: ``sub`` itself when it is a plain id, else a digest
    (a ``sub`` may be an e-mail address, which must not reach the audit trail)."""
    if _SAFE_SUBJECT.match(subject):
        return f"sub:{subject}"
    return "sub-sha256:" + hashlib.sha256(f"{issuer}|{subject}".encode()).hexdigest()[:24]


class PatientIndex:
    """Maps a token's ``patient`` claim to a pseudonym: pseudonyms pass, FHIR ids are looked up."""

    def __init__(
        self,
        index: Mapping[str, str] | None = None,
        *,
        lookup: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        self._index = {ref: p for ref, p in (index or {}).items() if _PSEUDONYM.match(p)}
        self.lookup = lookup  # the FHIR patient index in MongoDB, when configured

    @classmethod
    def from_file(
        cls, path: Path | None, *, lookup: Callable[[str], Awaitable[str | None]] | None = None
    ) -> PatientIndex:
        if path is None:
            return cls(lookup=lookup)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KeySetError(f"cannot read the patient index {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise KeySetError(f"the patient index {path} must hold a JSON object")
        return cls({str(k): str(v) for k, v in data.items()}, lookup=lookup)

    async def resolve(self, claim: object) -> str | None:
        """The pseudonym a claim names: itself, the file's entry, else the MongoDB index's."""
        found = self.pseudonym(claim)
        if found is None and self.lookup is not None and isinstance(claim, str) and _FHIR_ID.match(claim):
            found = await self.lookup(f"Patient/{claim}")
        return found

    def pseudonym(self, claim: object) -> str | None:
        if not isinstance(claim, str):
            return None
        if _PSEUDONYM.match(claim):
            return claim
        if _FHIR_ID.match(claim):
            return self._index.get(f"Patient/{claim}")
        return None


def patient_lookup(auth: AuthSettings, security: SecuritySettings, db: Any) -> MongoPatientLookup | None:
    """The FHIR patient index lookup for FHIR-id ``patient`` claims, when a source is configured."""
    if auth.patient_index_source is None:
        return None
    try:
        key = security.pseudonym_key_bytes()
    except ValueError as exc:
        raise KeySetError(f"NOVAMIND_AUTH__PATIENT_INDEX_SOURCE needs the pseudonym key: {exc}") from exc
    return MongoPatientLookup(db=db, key=key, source=auth.patient_index_source)


class JwtVerifier:
    """Authenticates OAuth 2.0 / OIDC access tokens (see the module docstring)."""

    def __init__(
        self,
        *,
        keys: JwksKeys,
        issuer: str,
        audience: str,
        leeway_s: float = 30.0,
        patients: PatientIndex | None = None,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self.patients = patients or PatientIndex()

    @classmethod
    def from_settings(
        cls, auth: AuthSettings, *, lookup: Callable[[str], Awaitable[str | None]] | None = None
    ) -> JwtVerifier:
        """Load the keys (file, or fetched from the URL now) and the patient index (a file,
        and ``lookup`` into the FHIR patient index)."""
        if auth.mode != "jwt" or auth.issuer is None or auth.audience is None:
            raise KeySetError("NOVAMIND_AUTH__MODE is not jwt, or issuer/audience are unset")
        if auth.jwks_file is not None:
            keys = JwksKeys.from_file(auth.jwks_file)
        else:
            assert auth.jwks_url is not None
            keys = JwksKeys.from_url(
                auth.jwks_url, refresh_s=auth.jwks_refresh_s, min_refresh_s=auth.jwks_min_refresh_s
            )
        return cls(
            keys=keys,
            issuer=auth.issuer,
            audience=auth.audience,
            leeway_s=auth.leeway_s,
            patients=PatientIndex.from_file(auth.patient_index_file, lookup=lookup),
        )

    async def authenticate(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed_token") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise InvalidToken("algorithm_not_allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("missing_kid")
        key = await self.keys.get(kid)
        if key is None:
            raise InvalidToken("unknown_key")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"], "strict_aud": False},
            )
        except jwt.PyJWTError as exc:
            reason = next((r for kind, r in _REASONS if isinstance(exc, kind)), "invalid_token")
            raise InvalidToken(reason) from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("missing_claim")
        scopes = parse_scopes(claims.get("scope", claims.get("scp")))
        return Identity(
            principal_id=principal_of(self.issuer, subject),
            patient_id=await self.patients.resolve(claims.get("patient")),
            scopes=scopes,
        )
