"""The audited export behind ``novamind dataset export``: read the twins, plan, write, audit.

:func:`audited_export` reads the twins' attributes from MongoDB, plans the export of the
daily features it is given, writes it into a staging directory and records the EXPORT event:
ALLOWED with the counts, or DENIED with the reason when the quality gate or the split refuses.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

from novamind.app.datasets.deidentify import new_export_key
from novamind.app.datasets.exceptions import DatasetError, QualityGateFailed
from novamind.app.datasets.export import ExportParameters, plan_export, write_export
from novamind.app.datasets.manifest import MANIFEST_NAME, sha256_file
from novamind.app.datasets.sources import read_twin_attributes
from novamind.platform.mongo import database, mongo_client
from novamind.platform.privacy.audit import AuditLog
from novamind.platform.producer import EventProducer
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from schemas.models import AuditAction, AuditOutcome
from schemas.topics import TopicName


async def audited_export(
    settings: Settings,
    features: list[dict[str, Any]],
    parameters: ExportParameters,
    *,
    producer: EventProducer,
    export_id: str,
    staging: Path,
    actor: str,
    purpose: str,
) -> dict[str, Any]:
    """Read twins, plan, write into ``staging``, then audit; a refusal is audited as DENIED.

    Returns the manifest; raises :class:`~novamind.app.datasets.exceptions.DatasetError` when
    the gate or the split refuses (after auditing the refusal).
    """
    client = mongo_client(settings.mongo, app_name=f"{settings.service_name}-dataset-export")
    try:
        db = database(client, settings.mongo)
        audit = AuditLog(
            db=db,
            codec=AvroCodec.from_settings(settings),
            producer=producer,
            topic=settings.kafka.topic(TopicName.AUDIT_EVENTS),
        )
        await audit.ensure_indexes()
        event: dict[str, Any] = {
            "actor": actor,
            "action": AuditAction.EXPORT,
            "purpose": purpose,
            "resource": f"datasets/{export_id}",
        }
        try:
            twins = await read_twin_attributes(db)
            # The key exists only for this call: nothing can re-link the subjects afterwards.
            plan = plan_export(features, twins, parameters, key=new_export_key(), rng=random.SystemRandom())
        except DatasetError as exc:
            details = {
                "export_id": export_id,
                "reason": type(exc).__name__,
                "records_read": str(len(features)),
            }
            if isinstance(exc, QualityGateFailed):
                details["patients_failing"] = str(len(exc.failures))
                details["days_failing"] = str(sum(len(d) for d in exc.failures.values()))
            await audit.record(**event, outcome=AuditOutcome.DENIED, details=details)
            raise
        manifest = write_export(
            plan, staging, export_id=export_id, created_at=dt.datetime.now(dt.UTC), parameters=parameters
        )
        await audit.record(
            **event,
            details={
                "export_id": export_id,
                "subjects": str(manifest["counts"]["subjects"]),
                **{f"rows_{name}": str(entry["rows"]) for name, entry in manifest["files"].items()},
                "days_failing_dropped": str(manifest["quality"]["days_failing_dropped"]),
                "validation_from": plan.split_plan.validation_from.isoformat(),
                "test_from": plan.split_plan.test_from.isoformat(),
                "gap_days": str(parameters.gap_days),
                "manifest_sha256": sha256_file(staging / MANIFEST_NAME),
            },
        )
        return manifest
    finally:
        await client.close()
