"""Worker web views: liveness, readiness and a patient's current windows and twin."""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from workers.pipeline.faustio import TableCache
from workers.pipeline.ingest import PatientEntry
from workers.twin.store import TWINS, TwinStore


def register(app: faust.App, *, entries: TableCache[PatientEntry], store: TwinStore) -> None:
    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "alive"})

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            assigned = len(app.consumer.assignment()) if app.consumer else 0
            recovery = getattr(app.tables, "recovery", None)
            recovered = bool(recovery and recovery.completed.is_set())
            consumer = app.consumer
            body = {
                "assigned_partitions": assigned,
                "tables_recovered": recovered,
                "paused_partitions": sorted(
                    f"{tp.topic}[{tp.partition}]" for tp in getattr(consumer, "_paused_partitions", ())
                ),
                "buffered_partitions": sorted(
                    f"{tp.topic}[{tp.partition}]" for tp in getattr(consumer, "_buffered_partitions", ())
                ),
                "active_partitions": len(getattr(consumer, "_active_partitions", None) or ()),
                "flow_active": app.flow_control.is_active(),
                "in_recovery": bool(getattr(recovery, "in_recovery", False)),
                "rebalancing": bool(app.rebalancing),
            }
            return self.json(body, status=200 if assigned and recovered else 503)

    @app.page("/patients/{patient_id}/windows")
    class Windows(View):
        async def get(self, request: Request, patient_id: str) -> Response:
            try:
                entry = entries[patient_id]
            except KeyError:
                return self.json({"error": "unknown patient on this replica"}, status=404)
            state = entry.state
            body: dict[str, Any] = {
                "patient_id": patient_id,
                "watermark_ms": state.watermark,
                "days": [state.features(day) for day in sorted(state.days)],
            }
            return self.json(body)

    @app.page("/patients/{patient_id}/twin")
    class Twin(View):
        async def get(self, request: Request, patient_id: str) -> Response:
            doc = await store.db[TWINS].find_one({"_id": patient_id}, {"state": 0})
            if doc is None:
                return self.json({"error": "no twin for this patient"}, status=404)
            return self.json({k: str(v) if k == "updated_at" else v for k, v in doc.items()})
