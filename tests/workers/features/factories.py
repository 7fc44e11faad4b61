"""Event dict factories shared by the worker unit tests (plain dicts, spec keys)."""

from __future__ import annotations

import itertools
from typing import Any

PATIENT = "p_" + "0123456789abcdef" * 2
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MIN_MS = 60_000
T0 = 19_700 * DAY_MS  # 2023-12-09 00:00 UTC, a day boundary
NOW = T0 + 400 * DAY_MS  # far enough ahead that nothing is "future"

UNITS = {
    "HEART_RATE": "beats/min",
    "RESTING_HEART_RATE": "beats/min",
    "HRV_RMSSD": "ms",
    "HRV_SDNN": "ms",
    "STEPS": "steps",
    "SLEEP_STAGE": "s",
    "SPO2": "%",
    "RESPIRATORY_RATE": "breaths/min",
}
_ids = itertools.count()


def envelope(t: int, event_id: str | None = None) -> dict[str, Any]:
    return {
        "event_id": event_id or f"ev-{next(_ids)}",
        "patient_id": PATIENT,
        "event_time": t,
        "received_time": t,
        "source": "simulator",
        "schema_version": 1,
    }


def biometric(metric: str, t: int, value: Any, /, **over: Any) -> dict[str, Any]:
    event = envelope(t, over.pop("event_id", None))
    event.update(
        metric=metric,
        value=value,
        unit=UNITS[metric],
        duration_seconds=None,
        sleep_stage=None,
        device_id="dev-1",
        loinc=None,
    )
    event.update(over)
    return event


def sleep(t: int, stage: str | None, seconds: int, /, **over: Any) -> dict[str, Any]:
    fields = {"sleep_stage": stage, "duration_seconds": seconds, **over}
    return biometric("SLEEP_STAGE", t, float(seconds), **fields)


def steps(t: int, value: float, seconds: int = 60, /, **over: Any) -> dict[str, Any]:
    return biometric("STEPS", t, value, **{"duration_seconds": seconds, **over})


def symptom(t: int, symptom_type: str, severity: Any, /, **over: Any) -> dict[str, Any]:
    event = envelope(t, over.pop("event_id", None))
    event.update(symptom_type=symptom_type, severity=severity, context=None, triggers=[], notes=None)
    event.update(over)
    return event


def _band(instrument: str, total: int) -> str:
    if total <= 4:
        return "MINIMAL"
    if total <= 9:
        return "MILD"
    if total <= 14:
        return "MODERATE"
    if instrument == "PHQ9" and total <= 19:
        return "MODERATELY_SEVERE"
    return "SEVERE"


def assessment(t: int, instrument: str, items: list[int], /, **over: Any) -> dict[str, Any]:
    event = envelope(t, over.pop("event_id", None))
    total = sum(items)
    event.update(
        submission_id=f"sub-{event['event_id']}",
        instrument=instrument,
        item_responses=items,
        total=total,
        band=_band(instrument, total),
        item9_positive=instrument == "PHQ9" and items[8] >= 1,
        loinc_total="44261-6" if instrument == "PHQ9" else "70274-6",
    )
    event.update(over)
    return event


def phq9(t: int, total: int) -> dict[str, Any]:
    """A PHQ-9 with the given total (item 9 kept at 0)."""
    items = [0] * 9
    left = total
    for i in range(8):
        items[i] = min(3, left)
        left -= items[i]
    assert left == 0
    return assessment(t, "PHQ9", items)
