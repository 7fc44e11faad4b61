"""Shared plumbing of the ``apply_*`` functions: event context, alert edges, dedup."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from workers.twin import policy
from workers.twin.inputs import millis, millis_to_ordinal
from workers.twin.outputs import TwinOutputs, twin_alert, twin_update
from workers.twin.twin import ActiveAlert, TwinState

RECENT_IDS = 48
FULL_EXPOSURE_DAYS = 42


@dataclass
class Context:
    """The triggering event's identity and times, shared by the outputs it produces."""

    event_id: str
    event_ms: int
    received_ms: int
    day: int
    alerts: list[dict[str, Any]] = field(default_factory=list)


def context(rec: Any, day: int | None = None) -> Context:
    event_ms = millis(rec.get("event_time"))
    received = millis(rec.get("received_time")) or event_ms
    return Context(
        str(rec.get("event_id") or ""),
        event_ms,
        received,
        millis_to_ordinal(event_ms) if day is None else day,
    )


def raise_alert(s: TwinState, ctx: Context, alert_type: str, evidence: dict[str, str], key: str) -> None:
    s.alerts[key] = ActiveAlert(alert_type, ctx.day, ctx.event_id)
    ctx.alerts.append(
        twin_alert(
            s,
            alert_type,
            key=key,
            trigger_event_id=ctx.event_id,
            event_ms=ctx.event_ms,
            received_ms=ctx.received_ms,
            evidence=evidence,
        )
    )


def toggle(
    s: TwinState,
    ctx: Context,
    alert_type: str,
    on: bool,
    evidence: dict[str, str],
    key: str | None = None,
) -> None:
    """Raise ``alert_type`` on a rising edge only; clear it when the condition ends."""
    key = key or alert_type
    if on and key not in s.alerts:
        raise_alert(s, ctx, alert_type, evidence, key)
    elif not on and key in s.alerts:
        del s.alerts[key]


def ignore(state: TwinState, reason: str) -> tuple[TwinState, TwinOutputs]:
    s = copy.deepcopy(state)
    s.ignored[reason] = s.ignored.get(reason, 0) + 1
    return s, TwinOutputs(decision=policy.IGNORE, reason=reason)


def seen(s: TwinState, event_key: str) -> bool:
    return bool(event_key) and event_key in s.recent_ids


def remember(s: TwinState, event_key: str) -> None:
    if event_key:
        s.recent_ids = [*s.recent_ids, event_key][-RECENT_IDS:]


def finish(
    s: TwinState,
    ctx: Context,
    *,
    snapshot: bool = False,
    decision: str = "APPLY",
    reason: str = "OK",
) -> tuple[TwinState, TwinOutputs]:
    s.twin_version += 1
    s.forecast_phq9 = s.phq9_model.predict(s.severity.recent_level)
    update = twin_update(s, event_ms=ctx.event_ms, received_ms=ctx.received_ms)
    return s, TwinOutputs(update, tuple(ctx.alerts), snapshot, decision, reason)


def exposure(s: TwinState, day: int) -> float:
    """Medication exposure in [0, 1]: days on the longest active course / 42, capped."""
    days = [day - c.start_day for c in s.medications.values() if c.active]
    return min(max(days), FULL_EXPOSURE_DAYS) / FULL_EXPOSURE_DAYS if days else 0.0
