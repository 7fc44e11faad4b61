"""Promote the shadow model version, roll a patient's twin back to a stored snapshot
(``novamind twin promote|rollback``), both audited and on the plan the workers run: the
configured versions, a promoted live version winning.

Both need the twin store and the model versions, and so the twin models (~2 s to import), which
reading a twin (:mod:`novamind.app.twinops`) goes without. A problem the operator can fix (no
shadow, no such snapshot, an unknown version) is a :class:`UsageError`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from novamind.app.twinops import TwinOperation, check_pseudonym, purpose_of
from novamind.platform.exceptions import UsageError
from novamind.platform.privacy.audit import AuditLog, os_user
from novamind.platform.settings import Settings
from schemas.topics import TopicName
from workers.runtime.twin_versions import Rollback, current_plan, promote, report_lines, rollback
from workers.twin.exceptions import TwinError
from workers.twin.promotion import PromotionReport
from workers.twin.store import TwinStore
from workers.twin.versions import VersionPlan, VersionRegistry, registry


@contextmanager
def _twin_errors_as_usage_errors() -> Iterator[None]:
    try:
        yield
    except TwinError as exc:
        raise UsageError(str(exc)) from exc


@_twin_errors_as_usage_errors()
def promote_shadow(
    settings: Settings, *, actor: str | None, dry_run: bool
) -> tuple[PromotionReport, list[str]]:
    """Apply the promotion rule to the shadow version; promote it when the rule passes, unless
    ``dry_run``. The report, and its lines with the versions' names."""
    versions = registry(settings.twin.versions)
    operation = TwinOperation(settings, "promote")

    async def run(db: AsyncDatabase[dict[str, Any]], audit: AuditLog) -> PromotionReport:
        store = TwinStore(db=db)
        return await promote(
            store=store,
            audit=audit,
            plan=await _plan(store, versions, settings),
            actor=actor or os_user(),
            dry_run=dry_run,
            now=dt.datetime.now(dt.UTC),
        )

    report = operation.run(run)
    return report, report_lines(report, names={v.id: v.name for v in versions.versions})


@_twin_errors_as_usage_errors()
def roll_back(
    settings: Settings,
    *,
    patient: str,
    snapshot: int,
    actor: str | None,
    purpose: str,
    pin: bool | None,
) -> tuple[Rollback, str]:
    """Send ``patient``'s snapshot number ``snapshot`` to ``twin-inputs`` as a ``TwinRestore``
    (audited first; :func:`workers.runtime.twin_versions.rollback` says what ``pin`` does).
    What was sent, and the id of the live version."""
    check_pseudonym(patient)
    reason = purpose_of(purpose)
    versions = registry(settings.twin.versions)
    operation = TwinOperation(settings, "rollback")

    async def run(db: AsyncDatabase[dict[str, Any]], audit: AuditLog) -> tuple[Rollback, str]:
        store = TwinStore(db=db)
        plan = await _plan(store, versions, settings)
        done = await rollback(
            store=store,
            audit=audit,
            producer=operation.producer,
            codec=operation.codec,
            topic=settings.kafka.topic(TopicName.TWIN_INPUTS),
            plan=plan,
            versions=versions,
            patient_id=patient,
            snapshot=snapshot,
            actor=actor or os_user(),
            purpose=reason,
            pin=pin,
            now=dt.datetime.now(dt.UTC),
        )
        return done, plan.live.id

    return operation.run(run)


async def _plan(store: TwinStore, versions: VersionRegistry, settings: Settings) -> VersionPlan:
    twin = settings.twin
    return await current_plan(store, versions, live=twin.version, shadow=twin.shadow_version)
