"""Builders of ``TwinUpdate`` / ``TwinAlert`` dicts and of the twin summary document.

The dicts use the contract field names and Python-side types (tz-aware UTC datetimes,
``datetime.date``), so the lead can validate them into ``schemas.models`` unchanged. Event
ids are UUIDv5 of stable inputs, so a replay produces the same ids (idempotent sinks).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workers.twin import policy
from workers.twin.inputs import millis_to_datetime, millis_to_ordinal, ordinal_to_date

if TYPE_CHECKING:
    from workers.twin.state import TwinState

SOURCE = "twin"
SCHEMA_VERSION = 1
"""Schema version of ``TwinAlert`` written by the twin."""
UPDATE_SCHEMA_VERSION = 2
"""Schema version of ``TwinUpdate`` (v2 added the forecast interval)."""
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://novamind.health/twin")


@dataclass(frozen=True)
class TwinOutputs:
    """What one applied event produced.

    Attributes
    ----------
    update
        A ``TwinUpdate``-shaped dict, or ``None`` when the event changes nothing downstream.
    alerts
        ``TwinAlert``-shaped dicts, newly raised by this event (already deduplicated).
    snapshot
        Whether the update policy asks for a model-version snapshot now.
    decision, reason
        The update-policy decision (``LEARN``/``SCORE_ONLY``/``IGNORE``/``APPLY``) and why.
    """

    update: dict[str, Any] | None = None
    alerts: tuple[dict[str, Any], ...] = ()
    snapshot: bool = False
    decision: str = "APPLY"
    reason: str = "OK"


def _envelope(
    patient_id: str, event_id: str, event_ms: int, received_ms: int, version: int = SCHEMA_VERSION
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "patient_id": patient_id,
        "event_time": millis_to_datetime(event_ms),
        "received_time": millis_to_datetime(received_ms),
        "source": SOURCE,
        "schema_version": version,
    }


def fmt(value: float | int | None) -> str:
    """Format a number for an evidence map (fixed precision, deterministic)."""
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}"


def active_alert_types(state: TwinState) -> list[str]:
    """Sorted, distinct alert types currently active."""
    return sorted({a.alert_type for a in state.alerts.values()})


def twin_alert(
    state: TwinState,
    alert_type: str,
    *,
    key: str,
    trigger_event_id: str,
    event_ms: int,
    received_ms: int,
    evidence: dict[str, str],
) -> dict[str, Any]:
    """Build a ``TwinAlert`` dict; ``key`` distinguishes alerts of one type (e.g. gene:drug)."""
    name = f"alert:{state.patient_id}:{key}:{trigger_event_id}"
    return {
        **_envelope(state.patient_id, str(uuid.uuid5(_NAMESPACE, name)), event_ms, received_ms),
        "alert_type": alert_type,
        "severity": policy.ALERT_SEVERITY[alert_type],
        "trigger_event_id": trigger_event_id,
        "evidence": dict(sorted(evidence.items())),
    }


def twin_update(state: TwinState, *, event_ms: int, received_ms: int) -> dict[str, Any]:
    """Build the ``TwinUpdate`` dict for the state as it now stands."""
    name = f"update:{state.patient_id}:{state.twin_version}"
    as_of = state.last_day if state.last_day is not None else millis_to_ordinal(event_ms)
    phq9_band = state.phq9.band if state.phq9 else None
    gad7_band = state.gad7.band if state.gad7 else None
    interval = state.severity.pending_interval
    event_id = str(uuid.uuid5(_NAMESPACE, name))
    return {
        **_envelope(state.patient_id, event_id, event_ms, received_ms, UPDATE_SCHEMA_VERSION),
        "twin_version": state.twin_version,
        "as_of_date": ordinal_to_date(as_of),
        "risk_level": risk(state),
        "model_source": state.model_source,
        "forecast_severity": state.forecast_severity,
        "forecast_severity_lo": interval[0] if interval else None,
        "forecast_severity_hi": interval[1] if interval else None,
        "forecast_phq9": state.forecast_phq9,
        "forecast_mae": state.severity.published.mae,
        "anomaly_score": state.anomaly_score,
        "deterioration": state.deterioration.active,
        "phq9_band": phq9_band,
        "gad7_band": gad7_band,
        "active_alerts": active_alert_types(state),
    }


def risk(state: TwinState) -> str:
    """The twin's current risk level (see :func:`workers.twin.policy.risk_level`); item 9 is
    the active ``ITEM9_SAFETY`` alert, which the latest item-9 answer (a full PHQ-9 or a
    ``PHQ9_ITEM9`` screen) raised or cleared."""
    return policy.risk_level(
        item9="ITEM9_SAFETY" in state.alerts,
        phq9_band=state.phq9.band if state.phq9 else None,
        gad7_band=state.gad7.band if state.gad7 else None,
        deterioration=state.deterioration.active,
        anomaly=state.anomaly_active or state.shift.active,
    )
