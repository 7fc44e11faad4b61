"""The two submission endpoints: authenticate, validate, build, deliver, then answer.

Each POST yields exactly one :class:`Decision`, which is audited and then rendered. A 201
(or the 200 of a remembered retry) is only ever answered after Kafka acknowledged the record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from connectors.intake import records
from connectors.intake.config import IntakeSettings
from connectors.intake.errors import error_body, validation_errors
from connectors.intake.idempotency import (
    Key,
    KeyedLocks,
    SubmissionLedger,
    body_fingerprint,
    submission_event_id,
)
from connectors.intake.models.requests import IntakeRequest, ValidationContext
from connectors.intake.ports import AuditSink, Clock, Deliverer, Encoder
from connectors.intake.ratelimit import RateLimiter, retry_after
from novamind.platform.auth.exceptions import Forbidden, InvalidToken
from novamind.platform.auth.identity import Authenticator, authorize, bearer_token
from novamind.platform.auth.scopes import Permission
from schemas.models import PSEUDONYM_PATTERN, AuditOutcome, PatientEvent

log = structlog.get_logger(__name__)
_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)
ANONYMOUS = "anonymous"
WWW_AUTHENTICATE = 'Bearer realm="novamind-intake"'
# What a submission is, in SMART terms: a patient-reported Observation, created.
WRITE_RESOURCE = "Observation"
WRITE_PERMISSION: Permission = "c"
REQUIRED_SCOPE = "patient/Observation.write"
# What the request log line may show: the pseudonym, the decision, the failing field paths.
LOG_PATIENT = web.RequestKey("log_patient", str)
LOG_OUTCOME = web.RequestKey("log_outcome", str)
LOG_ERROR_PATHS = web.RequestKey("log_error_paths", list)

# (validated request, patient, event id, received time) -> (record, response body)
Builder = Callable[[Any, str, str, dt.datetime], tuple[PatientEvent, BaseModel]]


@dataclass(frozen=True)
class Endpoint:
    """One submission kind: its request model and how to turn it into a record."""

    kind: str
    model: type[IntakeRequest]
    build: Builder


@dataclass
class Decision:
    """What to answer and to audit for one submission."""

    status: int
    body: dict[str, Any]
    outcome: AuditOutcome
    reason: str
    actor: str = ANONYMOUS
    headers: dict[str, str] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    aged: IntakeRequest | None = None  # a 422 only for being too old: maybe a late retry


def loggable_patient(value: str) -> str | None:
    """The path's patient id if it is a pseudonym; anything else may be PHI and is not logged."""
    return value if _PSEUDONYM.match(value) else None


class SubmissionHandler:
    """Runs the submission flow for every endpoint."""

    def __init__(
        self,
        *,
        settings: IntakeSettings,
        producer: Deliverer,
        codec: Encoder,
        tokens: Authenticator,
        audit: AuditSink,
        clock: Clock,
        lateness_days: int,
        limiter: RateLimiter,
        ledger: SubmissionLedger,
    ) -> None:
        self.settings = settings
        self.horizon = settings.horizon(lateness_days)
        self.limiter = limiter
        self.producer = producer
        self.codec = codec
        self.tokens = tokens
        self.audit = audit
        self.clock = clock
        self.ledger = ledger
        self.locks = KeyedLocks()

    async def handle(self, request: web.Request, endpoint: Endpoint) -> web.Response:
        patient_id = request.match_info["patient_id"]
        pseudonym = loggable_patient(patient_id)
        if pseudonym is not None:
            request[LOG_PATIENT] = pseudonym
        decision = await self._decide(request, endpoint, patient_id)
        request[LOG_OUTCOME] = decision.reason
        try:
            await self.audit.append(
                records.audit_event(
                    actor=decision.actor,
                    patient_id=loggable_patient(patient_id),
                    outcome=decision.outcome,
                    resource=self.settings.topic,
                    now=self.clock(),
                    details={"endpoint": endpoint.kind, "status": str(decision.status),
                             "reason": decision.reason, **decision.details},
                )
            )
        except Exception as exc:  # an unaudited answer is not an answer
            log.error("audit_failed", error_class=type(exc).__name__, endpoint=endpoint.kind)
            request[LOG_OUTCOME] = "audit_failed"
            return web.json_response(
                error_body("audit trail unavailable; retry later", type_="unavailable"),
                status=503, headers=self._retry_after())
        return web.json_response(decision.body, status=decision.status, headers=decision.headers)

    async def _decide(self, request: web.Request, endpoint: Endpoint, patient_id: str) -> Decision:
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            return Decision(401, error_body("a valid bearer token is required",
                                            type_="unauthenticated"),
                            AuditOutcome.DENIED, "unauthenticated",
                            headers={"WWW-Authenticate": WWW_AUTHENTICATE})
        try:
            identity = await self.tokens.authenticate(token)
        except InvalidToken as exc:  # the reason is audited; the client learns no more
            return Decision(401, error_body("a valid bearer token is required",
                                            type_="unauthenticated"),
                            AuditOutcome.DENIED, exc.reason,
                            headers={"WWW-Authenticate": WWW_AUTHENTICATE + ', error="invalid_token"'})
        actor = identity.principal_id
        wait_s = self.limiter.acquire(token)
        if wait_s > 0:
            return Decision(429, error_body("too many requests for this token; retry later",
                                            type_="rate_limited"),
                            AuditOutcome.DENIED, "rate_limited", actor,
                            headers={"Retry-After": retry_after(wait_s)})
        try:
            authorize(identity, patient_id=patient_id, resource=WRITE_RESOURCE,
                      permission=WRITE_PERMISSION, contexts=("patient",))
        except Forbidden as exc:
            if exc.reason == "scope_denied":
                challenge = f'{WWW_AUTHENTICATE}, error="insufficient_scope", scope="{REQUIRED_SCOPE}"'
                return Decision(403, error_body(f"the token lacks the scope {REQUIRED_SCOPE}",
                                                type_="insufficient_scope"),
                                AuditOutcome.DENIED, exc.reason, actor,
                                headers={"WWW-Authenticate": challenge})
            return Decision(403, error_body("this token may not submit for that patient",
                                            type_="forbidden", path="patient_id"),
                            AuditOutcome.DENIED, exc.reason, actor)
        parsed = await self._parse(request, endpoint)
        if isinstance(parsed, Decision):
            parsed.actor = actor
            if parsed.aged is not None:
                return await self._late_retry(parsed, parsed.aged, endpoint, patient_id)
            return parsed
        key = (patient_id, parsed.submission_id)
        fingerprint = body_fingerprint(endpoint.kind, parsed.model_dump(mode="json"))
        async with self.locks.guard(key):
            try:
                seen = await self.ledger.claim(key, fingerprint, self.clock())
            except Exception as exc:  # unknown whether this is a retry: accept nothing yet
                log.warning("intake_ledger_failed", error_class=type(exc).__name__, endpoint=endpoint.kind)
                return Decision(503, error_body("submission ledger unavailable; retry later",
                                                type_="unavailable"),
                                AuditOutcome.DENIED, "ledger_unavailable", actor,
                                headers=self._retry_after())
            if seen is not None:
                if seen.fingerprint != fingerprint:
                    return Decision(409, error_body(
                        "submission_id was already used for a different submission",
                        type_="conflict", path="submission_id"),
                        AuditOutcome.DENIED, "conflict", actor)
                if seen.response is not None:
                    return Decision(200, seen.response, AuditOutcome.ALLOWED, "replayed", actor,
                                    details={"event_id": seen.response["event_id"]})
                # Pending with this very body: an attempt that died mid-delivery, or one still
                # running on another replica. Producing again is safe (same event id).
            return await self._deliver(parsed, endpoint, patient_id, key, fingerprint, actor)

    async def _parse(self, request: web.Request, endpoint: Endpoint) -> IntakeRequest | Decision:
        if request.content_type != "application/json":
            return Decision(415, error_body("send the body as application/json",
                                            type_="unsupported_media_type"),
                            AuditOutcome.DENIED, "unsupported_media_type")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return Decision(413, error_body(
                f"body larger than {self.settings.max_body_bytes} bytes", type_="too_large"),
                AuditOutcome.DENIED, "too_large")
        try:
            json.loads(raw)
        except ValueError as exc:  # the message names the position, never the content
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            return Decision(400, error_body(f"request body is not valid JSON: {reason}",
                                            type_="json_invalid"),
                            AuditOutcome.DENIED, "malformed_json")
        context = ValidationContext(
            now=self.clock(),
            max_skew=dt.timedelta(seconds=self.settings.max_clock_skew_s),
            horizon=self.horizon,
        )
        try:
            return endpoint.model.model_validate_json(raw, context=context)
        except ValidationError as exc:
            errors = validation_errors(exc)
            request[LOG_ERROR_PATHS] = [e["path"] for e in errors]
            refused = Decision(422, {"errors": errors}, AuditOutcome.DENIED, "invalid")
            if all(e["type"] == "too_old" for e in errors):
                unbounded = dataclasses.replace(context, horizon=None)
                with contextlib.suppress(ValidationError):
                    refused.aged = endpoint.model.model_validate_json(raw, context=unbounded)
            return refused

    async def _late_retry(
        self, refused: Decision, aged: IntakeRequest, endpoint: Endpoint, patient_id: str
    ) -> Decision:
        """A retry of an acknowledged submission whose event time has since left the horizon
        still gets its 200 (the ledger outlives the horizon); anything else keeps its 422."""
        fingerprint = body_fingerprint(endpoint.kind, aged.model_dump(mode="json"))
        try:
            seen = await self.ledger.lookup((patient_id, aged.submission_id))
        except Exception as exc:
            log.warning("intake_ledger_failed", error_class=type(exc).__name__, endpoint=endpoint.kind)
            return refused
        if seen is None or seen.response is None or seen.fingerprint != fingerprint:
            return refused
        return Decision(200, seen.response, AuditOutcome.ALLOWED, "replayed", refused.actor,
                        details={"event_id": seen.response["event_id"]})

    async def _deliver(
        self,
        parsed: IntakeRequest,
        endpoint: Endpoint,
        patient_id: str,
        key: Key,
        fingerprint: str,
        actor: str,
    ) -> Decision:
        event_id = submission_event_id(patient_id, parsed.submission_id)
        record, response = endpoint.build(parsed, patient_id, event_id, self.clock())
        value = self.codec.encode(record, topic=self.settings.topic)
        try:
            await self.producer.deliver(self.settings.topic, key=patient_id.encode(), value=value,
                                        timeout=self.settings.delivery_timeout_s)
        except Exception as exc:  # not acknowledged: claim nothing, let the client retry
            log.warning("intake_delivery_failed", error_class=type(exc).__name__,
                        patient_id=patient_id, endpoint=endpoint.kind)
            await self._forget(key, fingerprint)
            return Decision(503, error_body("event not accepted: Kafka did not acknowledge it",
                                            type_="unavailable"),
                            AuditOutcome.UNKNOWN, "delivery_failed", actor,
                            headers=self._retry_after(), details={"event_id": record.event_id})
        body = response.model_dump(mode="json")
        try:
            await self.ledger.acknowledge(key, fingerprint, body, self.clock())
        except Exception as exc:  # Kafka has it: a retry re-produces under the same event id
            log.warning("intake_ledger_failed", error_class=type(exc).__name__, endpoint=endpoint.kind)
        return Decision(201, body, AuditOutcome.ALLOWED, "accepted", actor,
                        details={"event_id": record.event_id, "record": record.avro_name})

    async def _forget(self, key: Key, fingerprint: str) -> None:
        try:
            await self.ledger.release(key, fingerprint)
        except Exception as exc:  # the claim stays pending; a retry with this body takes it over
            log.warning("intake_ledger_failed", error_class=type(exc).__name__)

    def _retry_after(self) -> dict[str, str]:
        return {"Retry-After": str(self.settings.retry_after_s)}
