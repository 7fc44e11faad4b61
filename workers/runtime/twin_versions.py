"""The operator's model-version tools: promote the shadow version, roll one twin back.

Both are audited before they change anything (action ``AMEND``; details carry version ids,
counts and the snapshot number, never PHI): when the audit log cannot take the event, nothing
changes.

* :func:`promote` applies the promotion rule (:mod:`workers.twin.promotion`) to the shadow's
  paired metrics stored with the twins and, when it passes (and this is not a dry run), records
  the shadow as the deployment's live version in ``twin_versions``. Workers take it at their
  next plan refresh; each twin moves at its next input, taking its shadow twin's state.
* :func:`rollback` writes a ``TwinRestore`` record carrying a stored snapshot to
  ``twin-inputs``, keyed by the patient, and returns once Kafka acknowledged it. The worker
  that owns the patient applies it in order with the patient's other inputs (so no input is
  lost or applied to the wrong state, and the replay reproduces it). By default a snapshot of
  another version than the live one pins the twin to that version.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from novamind.platform.privacy.audit import AuditLog, Purpose
from schemas.codec import AvroCodec
from schemas.models import AuditAction, TwinRestore
from workers.twin.exceptions import StateDecodeError, VersionOperationError
from workers.twin.promotion import PromotionReport, PromotionRule, evaluate
from workers.twin.serialize import deserialize
from workers.twin.store import TwinStore
from workers.twin.versions import VersionPlan, VersionRegistry, plan_of

ROLLBACK_SOURCE = "operator"


class Deliverer(Protocol):
    """What a rollback needs of a producer (``novamind.platform.producer.EventProducer``)."""

    async def deliver(self, topic: str, *, key: bytes, value: bytes, timeout: float = 30.0) -> None: ...


async def current_plan(
    store: TwinStore, versions: VersionRegistry, *, live: str, shadow: str | None
) -> VersionPlan:
    """The plan the workers run: the configured versions, the promoted live one winning."""
    promoted = (await store.deployment() or {}).get("live")
    return plan_of(versions, live=live, shadow=shadow, promoted=promoted)


async def promote(
    *,
    store: TwinStore,
    audit: AuditLog,
    plan: VersionPlan,
    actor: str,
    rule: PromotionRule | None = None,
    dry_run: bool = False,
    now: dt.datetime,
) -> PromotionReport:
    """Apply the promotion rule to ``plan``'s shadow; promote it when the rule passes and this is
    not a dry run. Returns the report either way.

    Raises
    ------
    VersionOperationError
        The plan runs no shadow.
    """
    if plan.shadow is None:
        raise VersionOperationError(
            f"no model version runs in shadow beside {plan.live.name} ({plan.live.id}); "
            "set NOVAMIND_TWIN__SHADOW_VERSION on the workers first"
        )
    per_patient = await store.shadow_metrics(plan.shadow.id)
    report = evaluate(per_patient, live=plan.live.id, shadow=plan.shadow.id, rule=rule)
    if not report.promote or dry_run:
        return report
    event = await audit.record(
        actor=actor,
        action=AuditAction.AMEND,
        purpose=Purpose.OPERATIONS,
        resource="twin_versions/promote",
        details={
            "from_version": plan.live.id,
            "to_version": plan.shadow.id,
            "patients": str(report.patients),
            "pairs": str(report.pairs),
            "gain": f"{report.gain:.4f}",
            "p_value": f"{report.p_value:.3g}",
            "via": "cli",
        },
    )
    await store.record_promotion(
        live=plan.shadow.id,
        previous=plan.live.id,
        actor=actor,
        report={**report.to_dict(), "audit_event_id": event.event_id},
        now=now,
    )
    return report


@dataclass(frozen=True)
class Rollback:
    """What :func:`rollback` sent."""

    patient_id: str
    snapshot: int
    from_version: str
    to_version: str
    pin: bool
    audit_event_id: str
    restore_event_id: str


async def rollback(
    *,
    store: TwinStore,
    audit: AuditLog,
    producer: Deliverer,
    codec: AvroCodec,
    topic: str,
    plan: VersionPlan,
    versions: VersionRegistry,
    patient_id: str,
    snapshot: int,
    actor: str,
    purpose: str = Purpose.OPERATIONS,
    pin: bool | None = None,
    now: dt.datetime,
) -> Rollback:
    """Audit, then send the ``TwinRestore`` of ``patient_id``'s snapshot ``snapshot`` to the
    ``twin-inputs`` topic (its cluster name ``topic``) and wait for Kafka's acknowledgement.

    ``pin=None`` pins the twin to the snapshot's version when that is not the live one and this
    build knows it.

    Raises
    ------
    VersionOperationError
        No such twin or snapshot (e.g. pruned), or a snapshot that does not decode.
    """
    twin = await store.twin_version(patient_id)
    if twin is None:
        raise VersionOperationError("no stored twin for this patient")
    doc = await store.snapshot(patient_id, snapshot)
    if doc is None:
        raise VersionOperationError(f"no snapshot {snapshot} is kept for this patient (see twin versions)")
    blob = bytes(doc["model"])
    try:
        if deserialize(blob).patient_id != patient_id:
            raise VersionOperationError(f"snapshot {snapshot} holds another patient's twin")
    except StateDecodeError as exc:
        raise VersionOperationError(f"snapshot {snapshot} does not decode: {exc}") from exc
    to_version = str(doc.get("model_version_id") or "unrecorded")
    known = versions.find(to_version) is not None
    if pin is None:
        pin = known and to_version != plan.live.id
    from_version = str(twin.get("model_version_id") or "unrecorded")
    event = await audit.record(
        actor=actor,
        action=AuditAction.AMEND,
        purpose=purpose,
        resource="twins/rollback",
        patient_id=patient_id,
        details={
            "from_version": from_version,
            "to_version": to_version,
            "snapshot": str(snapshot),
            "pinned": str(pin and known).lower(),
            "via": "cli",
        },
    )
    restore = TwinRestore(
        event_id=str(uuid.uuid4()),
        patient_id=patient_id,
        event_time=now,
        received_time=now,
        source=ROLLBACK_SOURCE,
        snapshot=snapshot,
        model_version_id=to_version,
        pin=pin,
        state=blob,
        audit_event_id=event.event_id,
    )
    await producer.deliver(topic, key=patient_id.encode(), value=codec.encode(restore, topic=topic))
    return Rollback(
        patient_id=patient_id,
        snapshot=snapshot,
        from_version=from_version,
        to_version=to_version,
        pin=pin and known,
        audit_event_id=event.event_id,
        restore_event_id=restore.event_id,
    )


def report_lines(report: PromotionReport, *, names: dict[str, str] | None = None) -> list[str]:
    """The promotion report, readably."""
    names = names or {}

    def label(version_id: str) -> str:
        return f"{names[version_id]} ({version_id})" if version_id in names else version_id

    def num(value: Any, fmt: str = ".3f") -> str:
        return "-" if value is None else format(value, fmt)

    lines = [
        f"live    {label(report.live)}",
        f"shadow  {label(report.shadow)}",
        f"patients with a shadow {report.patients_shadowed}, with enough pairs {report.patients}; "
        f"paired forecasts {report.pairs}",
        f"severity MAE live {num(report.live_mae)}, shadow {num(report.shadow_mae)}, "
        f"gain {num(report.gain, '.1%')}",
        f"patients where the shadow is better {report.shadow_better_patients}, worse "
        f"{report.live_better_patients}; sign test p = {num(report.p_value, '.3g')}",
        f"80% interval coverage live {num(report.live_coverage, '.1%')}, "
        f"shadow {num(report.shadow_coverage, '.1%')}",
        f"PHQ-9 MAE live {num(report.phq9_live_mae, '.2f')}, shadow {num(report.phq9_shadow_mae, '.2f')} "
        f"({report.phq9_pairs} pairs)",
    ]
    if report.promote:
        lines.append("rule: PASSED")
    else:
        lines.append("rule: not passed")
        lines.extend(f"  - {reason}" for reason in report.reasons)
    return lines
