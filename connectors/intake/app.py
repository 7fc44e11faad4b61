"""The intake aiohttp application: two submission endpoints, ``/openapi.json``, ``/healthz``.

Logs one structured line per request with method, route, status, latency and the patient
pseudonym only: never the path as typed, the body, notes or the token.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from connectors.intake import records
from connectors.intake.config import IntakeSettings
from connectors.intake.errors import error_body
from connectors.intake.handlers import (
    LOG_ERROR_PATHS,
    LOG_OUTCOME,
    LOG_PATIENT,
    Endpoint,
    SubmissionHandler,
)
from connectors.intake.idempotency import MemorySubmissionLedger, SubmissionLedger
from connectors.intake.models import (
    AssessmentAccepted,
    AssessmentRequest,
    SymptomReportAccepted,
    SymptomReportRequest,
)
from connectors.intake.openapi import ASSESSMENTS_PATH, SYMPTOM_REPORTS_PATH, openapi_document
from connectors.intake.ports import AuditSink, Clock, Deliverer, Encoder, TextEncryptor, utc_now
from connectors.intake.ratelimit import RateLimiter
from novamind.platform.auth.identity import Authenticator
from novamind.platform.metrics import metrics_handler
from novamind.platform.settings import WorkerSettings
from schemas.models import AssessmentResult, SymptomReport

log = structlog.get_logger(__name__)
DEFAULT_LATENESS_DAYS: int = WorkerSettings.model_fields["lateness_days"].default
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Canonical log line per request; unexpected errors become a bare JSON 500."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        return web.json_response(
            error_body(exc.reason, type_="http_error"),
            status=exc.status,
            headers={k: v for k, v in exc.headers.items() if k.lower() == "allow"},
        )
    except Exception as exc:  # no traceback: locals could hold the body
        log.error("intake_unhandled_error", error_class=type(exc).__name__)
        return web.json_response(error_body("internal error", type_="internal"), status=500)
    finally:
        route = request.match_info.route.resource
        log.info(
            "intake_request",
            method=request.method,
            route=route.canonical if route is not None else None,
            status=status,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            patient_id=request.get(LOG_PATIENT),
            outcome=request.get(LOG_OUTCOME),
            error_paths=request.get(LOG_ERROR_PATHS),
        )


def create_intake_app(
    *,
    settings: IntakeSettings,
    producer: Deliverer,
    codec: Encoder,
    tokens: Authenticator,
    encryptor: TextEncryptor,
    audit: AuditSink,
    clock: Clock = utc_now,
    lateness_days: int = DEFAULT_LATENESS_DAYS,
    limiter: RateLimiter | None = None,
    ledger: SubmissionLedger | None = None,
) -> web.Application:
    """Build the application; every collaborator is injected (see ``connectors.intake.ports``).

    ``lateness_days`` is the workers' ``NOVAMIND_WORKER__LATENESS_DAYS``: older event times get
    422. ``limiter`` defaults to the per-token rate of ``settings``; ``ledger`` (the
    idempotency ledger, MongoDB in production) to an in-memory LRU.
    """

    def build_symptom(
        req: SymptomReportRequest, patient_id: str, event_id: str, now: dt.datetime
    ) -> tuple[SymptomReport, SymptomReportAccepted]:
        record = records.symptom_report(
            req, patient_id=patient_id, event_id=event_id, received_time=now, encryptor=encryptor
        )
        return record, SymptomReportAccepted(event_id=record.event_id, submission_id=req.submission_id)

    def build_assessment(
        req: AssessmentRequest, patient_id: str, event_id: str, now: dt.datetime
    ) -> tuple[AssessmentResult, AssessmentAccepted]:
        result = records.assessment_result(req, patient_id=patient_id, event_id=event_id, received_time=now)
        return result, AssessmentAccepted(
            event_id=result.event_id,
            submission_id=result.submission_id,
            instrument=result.instrument,
            total=result.total,
            band=result.band,
            item9_positive=result.item9_positive,
            loinc_total=result.loinc_total or "",
        )

    if limiter is None:
        limiter = RateLimiter(per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst)
    if ledger is None:
        ledger = MemorySubmissionLedger(capacity=settings.idempotency_cache_size)
    submissions = SubmissionHandler(
        settings=settings,
        producer=producer,
        codec=codec,
        tokens=tokens,
        audit=audit,
        clock=clock,
        lateness_days=lateness_days,
        limiter=limiter,
        ledger=ledger,
    )
    symptom = Endpoint("symptom-report", SymptomReportRequest, build_symptom)
    assessment = Endpoint("assessment", AssessmentRequest, build_assessment)
    document = openapi_document()

    async def post_symptom(request: web.Request) -> web.Response:
        return await submissions.handle(request, symptom)

    async def post_assessment(request: web.Request) -> web.Response:
        return await submissions.handle(request, assessment)

    async def get_openapi(_request: web.Request) -> web.Response:
        return web.json_response(document)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(middlewares=[request_log], client_max_size=settings.max_body_bytes)
    app.router.add_post(SYMPTOM_REPORTS_PATH, post_symptom)
    app.router.add_post(ASSESSMENTS_PATH, post_assessment)
    app.router.add_get("/openapi.json", get_openapi)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler())
    return app
