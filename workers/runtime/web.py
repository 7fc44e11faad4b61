"""A replica's web views: liveness, readiness, metrics, a patient's windows and twin.

Patient views read what this replica holds; another replica owns the other partitions (404
says so). Every patient view is audited: reading a twin or windows is an access to PHI.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from novamind.platform.metrics import metrics_handler
from workers.runtime.worker import Worker
from workers.twin.store import TWINS

AuditAccess = Callable[[web.Request, str, str], Awaitable[None]]  # authorises and audits


def build_web(worker: Worker, *, audit_access: AuditAccess) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_request: web.Request) -> web.Response:
        h = worker.health
        body = {
            "ready": h.ready,
            "assigned_partitions": len(h.assigned),
            "restoring_partitions": sorted(h.restoring),
            "batches": h.batches,
            "last_batch_at": h.last_batch_at,
            "stopping": h.stopping,
        }
        return web.json_response(body, status=200 if h.ready else 503)

    async def windows(request: web.Request) -> web.Response:
        patient_id = request.match_info["patient_id"]
        await audit_access(request, patient_id, "windows")
        if patient_id not in worker.states:
            return web.json_response({"error": "patient not held by this replica"}, status=404)
        state = worker.states[patient_id].state
        body: dict[str, Any] = {
            "patient_id": patient_id,
            "watermark_ms": state.watermark,
            "days": [state.features(day) for day in sorted(state.days)],
        }
        return web.json_response(body, dumps=_dumps)

    async def twin(request: web.Request) -> web.Response:
        patient_id = request.match_info["patient_id"]
        await audit_access(request, patient_id, "twin")
        doc = await worker.store.db[TWINS].find_one({"_id": patient_id}, {"state": 0, "shadow.state": 0})
        if doc is None:
            return web.json_response({"error": "no twin for this patient"}, status=404)
        return web.json_response(doc, dumps=_dumps)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler())
    app.router.add_get("/patients/{patient_id}/windows", windows)
    app.router.add_get("/patients/{patient_id}/twin", twin)
    return app


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)
