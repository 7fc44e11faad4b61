"""Who may read a patient's views on a replica, and the audit event each request leaves.

``NOVAMIND_AUTH__MODE`` chooses the tokens: ``jwt`` (access tokens of the identity provider;
``patient/`` read scopes reach the token's own patient, ``user/``/``system/`` ones any patient)
or ``static`` (``NOVAMIND_WORKER__VIEW_TOKENS``, actor -> token, for development). A read needs
an Observation read scope. Refusals (401/403) are audited as DENIED, reads as ALLOWED first.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from aiohttp import web

from novamind.platform.auth.exceptions import Forbidden, InvalidToken
from novamind.platform.auth.identity import Authenticator, Identity, authorize, bearer_token
from novamind.platform.auth.scopes import Scope
from novamind.platform.auth.tokens import JwtVerifier, patient_lookup
from novamind.platform.privacy.audit import AuditLog, Purpose
from novamind.platform.settings import Settings
from schemas.models import PSEUDONYM_PATTERN, AuditAction, AuditOutcome

_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)
STATIC_VIEW_SCOPES = (Scope("user", "*", frozenset("rs")),)


class ViewAccess:
    """Bearer tokens map to identities; every read, allowed or refused, is audited."""

    def __init__(
        self,
        settings: Settings,
        audit: AuditLog,
        *,
        verifier: Authenticator | None = None,
        db: Any = None,
    ) -> None:
        self._tokens = {actor: t.get_secret_value() for actor, t in settings.worker.view_tokens.items()}
        if verifier is None and settings.auth.mode == "jwt":
            lookup = None if db is None else patient_lookup(settings.auth, settings.security, db)
            verifier = JwtVerifier.from_settings(settings.auth, lookup=lookup)
        self._verifier = verifier
        self._audit = audit

    async def identity_of(self, request: web.Request) -> Identity:
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            raise InvalidToken("unauthenticated")
        if self._verifier is not None:
            return await self._verifier.authenticate(token)
        for actor, expected in self._tokens.items():
            if hmac.compare_digest(token, expected):
                return Identity(actor, None, STATIC_VIEW_SCOPES)
        raise InvalidToken("unknown_token")

    async def __call__(self, request: web.Request, patient_id: str, view: str) -> None:
        purpose = request.query.get("purpose", Purpose.TREATMENT.value)
        actor = "anonymous"
        try:
            identity = await self.identity_of(request)
            actor = identity.principal_id
            authorize(identity, patient_id=patient_id, resource="Observation", permission="r")
        except InvalidToken as exc:
            await self._deny(actor, purpose, view, patient_id, exc.reason)
            raise web.HTTPUnauthorized(
                text='{"error": "a bearer token of an authorised actor is required"}',
                content_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="novamind-worker", error="invalid_token"'},
            ) from None
        except Forbidden as exc:
            await self._deny(actor, purpose, view, patient_id, exc.reason)
            raise web.HTTPForbidden(
                text='{"error": "this token may not read that patient\'s views"}',
                content_type="application/json",
            ) from None
        if purpose not in Purpose.__members__:
            raise web.HTTPUnprocessableEntity(
                text=f'{{"error": "purpose must be one of {sorted(Purpose.__members__)}"}}',
                content_type="application/json",
            )
        await self._audit.record(
            actor=actor,
            action=AuditAction.ACCESS,
            purpose=purpose,
            resource=f"worker-view:{view}",
            patient_id=patient_id,
        )

    async def _deny(self, actor: str, purpose: str, view: str, patient_id: str, reason: str) -> None:
        await self._audit.record(
            actor=actor,
            action=AuditAction.ACCESS,
            purpose=purpose if purpose in Purpose.__members__ else Purpose.TREATMENT.value,
            resource=f"worker-view:{view}",
            outcome=AuditOutcome.DENIED,
            patient_id=patient_id if _PSEUDONYM.match(patient_id) else None,  # else it may be PHI
            details={"reason": reason},
        )
