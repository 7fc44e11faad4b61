"""Plain-dict builders keyed exactly like the contract records (see schemas/ for the types).

Every builder returns the envelope fields first: ``event_id, patient_id, event_time,
received_time, source, schema_version``. Times are tz-aware UTC datetimes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from schemas.assessments import band_for, score_items
from schemas.catalog import catalog
from schemas.exceptions import AssessmentError
from schemas.metrics import METRIC_LOINC, METRIC_UNIT

SCHEMA_VERSION = 1
"""Version of a record type with one published version (``current_version`` knows them all)."""


def current_version(record_type: str) -> int:
    """The ``schema_version`` a producer writes for ``record_type``: its newest published
    version (the one the codec encodes with).

    >>> current_version("BiometricSample"), current_version("AssessmentResult")
    (1, 2)
    """
    return catalog().get(record_type).version


def epoch_ms(value: datetime) -> int:
    """Milliseconds since the Unix epoch for an aware datetime."""
    return round(value.timestamp() * 1000)


def event_id(*parts: object) -> str:
    """Deterministic id: first 32 hex of sha256 over the ``|``-joined parts.

    Datetimes enter as epoch milliseconds, so the same instant in any zone gives the same id.
    """
    text = "|".join(str(epoch_ms(p)) if isinstance(p, datetime) else str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; naive datetimes are refused."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: a time zone is required")
    return value.astimezone(UTC)


def envelope(
    *,
    eid: str,
    patient_id: str,
    event_time: datetime,
    received_time: datetime | None,
    source: str,
    schema_version: int = SCHEMA_VERSION,
) -> dict[str, Any]:
    """Return the common envelope fields in contract order (``schema_version``: see
    :func:`current_version`)."""
    return {
        "event_id": eid,
        "patient_id": patient_id,
        "event_time": utc(event_time),
        "received_time": utc(received_time) if received_time else datetime.now(UTC),
        "source": source,
        "schema_version": schema_version,
    }


def biometric_sample(
    *,
    patient_id: str,
    source: str,
    device_id: str,
    metric: str,
    value: float,
    event_time: datetime,
    received_time: datetime | None = None,
    unit: str | None = None,
    duration_seconds: int | None = None,
    sleep_stage: str | None = None,
    id_key: str | None = None,
) -> dict[str, Any]:
    """Build a BiometricSample dict; the id hashes (source, device, metric, timestamp)."""
    when = utc(event_time)
    eid = event_id(source, id_key or device_id, metric, when, sleep_stage or "")
    rec = envelope(
        eid=eid, patient_id=patient_id, event_time=when, received_time=received_time, source=source
    )
    rec.update(
        metric=metric,
        value=float(value),
        unit=unit or METRIC_UNIT.get(metric, ""),
        duration_seconds=duration_seconds,
        sleep_stage=sleep_stage,
        device_id=device_id,
        loinc=METRIC_LOINC.get(metric),
    )
    return rec


def score_assessment(instrument: str, items: Sequence[int]) -> tuple[int, str, bool]:
    """Return (total, band, item9_positive) for PHQ9/GAD7/PHQ9_ITEM9 item scores 0..3.

    >>> score_assessment("PHQ9", [1, 1, 1, 1, 1, 1, 1, 1, 1])
    (9, 'MILD', True)
    >>> score_assessment("GAD7", [3] * 7)
    (21, 'SEVERE', False)
    >>> score_assessment("PHQ9_ITEM9", [1])
    (1, 'UNKNOWN', True)
    """
    try:
        score = score_items(instrument, items)
    except AssessmentError as exc:  # connectors report scoring problems as ValueError
        raise ValueError(str(exc)) from exc
    return score.total, str(score.band), score.item9_positive


def band_for_total(instrument: str, total: int) -> str:
    """Severity band for a total score (UNKNOWN when out of range)."""
    try:
        return str(band_for(instrument, total))
    except AssessmentError:
        return "UNKNOWN"
