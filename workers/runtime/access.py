"""Who may read a patient's views on a replica, and the audit event each read leaves."""

from __future__ import annotations

import hmac

from aiohttp import web

from novamind.privacy.audit import AuditLog, Purpose
from novamind.settings import Settings
from schemas.models import AuditAction


class ViewAccess:
    """Bearer tokens from settings map to actors; every allowed read is audited first."""

    def __init__(self, settings: Settings, audit: AuditLog) -> None:
        self._tokens = {actor: t.get_secret_value() for actor, t in settings.worker.view_tokens.items()}
        self._audit = audit

    def actor_of(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        for actor, expected in self._tokens.items():
            if token and hmac.compare_digest(token, expected):
                return actor
        raise web.HTTPUnauthorized(
            text='{"error": "a bearer token of an authorised actor is required"}',
            content_type="application/json",
        )

    async def __call__(self, request: web.Request, patient_id: str, view: str) -> None:
        actor = self.actor_of(request)
        purpose = request.query.get("purpose", Purpose.TREATMENT.value)
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
