"""Plain builders of contract-shaped dicts for the twin tests (importable without pytest)."""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

from workers.twin.monitors import ANOMALY_FEATURES

START = dt.date(2025, 1, 1)
PID = "p_" + "ab" * 16
Events = list[tuple[str, dict[str, Any]]]


def ms(day: int, seconds: int) -> int:
    """Epoch milliseconds of ``seconds`` into study day ``day``."""
    return ((START - dt.date(1970, 1, 1)).days + day) * 86_400_000 + seconds * 1000


def _envelope(event_id: str, day: int, seconds: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "patient_id": PID,
        "event_time": ms(day, seconds),
        "received_time": ms(day, seconds) + 1000,
        "source": "test",
        "schema_version": 1,
    }


def features(day: int, severity: float | None = 3.0, **extra: Any) -> dict[str, Any]:
    """A ``PatientDailyFeatures`` dict for study day ``day``."""
    rec: dict[str, Any] = {
        **_envelope(f"f-{day}-{extra.get('revision', 0)}", day, 86_399),
        "date": START + dt.timedelta(days=day),
        "revision": 0,
        "missing": False,
        "meets_quality_standards": True,
        "symptom_severity_mean": severity,
        "resting_heart_rate": 62.0,
        "hrv_rmssd": 45.0,
        "steps_total": 8000.0,
        "sleep_total_minutes": 420.0,
        "heart_rate_mean": 74.0,
        "spo2_mean": 97.0,
        "respiratory_rate_mean": 14.5,
        "symptom_severity_by_type": {},
        "rolling_7d": {},
        "normalized": {},
    }
    rec.update(extra)
    return rec


def assessment(
    day: int, items: list[int], instrument: str = "PHQ9", sid: str | None = None, **extra: Any
) -> dict[str, Any]:
    """An ``AssessmentResult`` dict (band left UNKNOWN: the twin derives it)."""
    sid = sid or f"{instrument}-{day}"
    rec: dict[str, Any] = {
        **_envelope(f"e-{sid}", day, 36_000),
        "submission_id": sid,
        "instrument": instrument,
        "item_responses": items,
        "total": sum(items),
        "band": "UNKNOWN",
        "item9_positive": instrument == "PHQ9" and items[8] >= 1,
        "loinc_total": None,
    }
    rec.update(extra)
    return rec


def medication(day: int, drug: str, action: str = "STARTED") -> dict[str, Any]:
    """A ``MedicationEvent`` dict."""
    return {
        **_envelope(f"m-{day}-{drug}-{action}", day, 32_400),
        "action": action,
        "rxnorm": None,
        "drug": drug,
        "dose_mg": 50.0,
    }


def genetic(day: int, **phenotypes: str) -> dict[str, Any]:
    """A ``GeneticProfile`` dict, e.g. ``genetic(0, CYP2C19="POOR_METABOLIZER")``."""
    return {
        **_envelope(f"g-{day}", day, 1),
        "phenotypes": [{"gene": g, "phenotype": p, "diplotype": None} for g, p in phenotypes.items()],
    }


def year(days: int = 365, seed: int = 1) -> Events:
    """A patient's events: AR(1) mood with a sleep drive, biweekly PHQ-9, a med start."""
    rng = random.Random(seed)
    events: Events = [("genetic", genetic(0, CYP2C19="POOR_METABOLIZER"))]
    latent, sleep_prev = 0.0, 420.0
    for t in range(days):
        latent = 0.8 * latent + rng.gauss(0, 0.5)
        mood = 3 + latent + 0.6 * (420 - sleep_prev) / 60 + 2 * math.sin(t / 40)
        mood = min(max(mood, 0.0), 10.0)
        if t == 100:
            events.append(("medication", medication(t, "sertraline")))
        if t % 14 == 3:
            phq = min(max(round(2.5 * mood + rng.gauss(0, 2)), 0), 24)
            items = [min(3, max(0, phq - 3 * i)) for i in range(8)] + [int(t % 70 == 3)]
            events.append(("assessment", assessment(t, items)))
        sleep = rng.gauss(420 - 15 * (mood - 3), 40)
        sleep_prev = sleep
        sev = None if t % 17 == 5 else min(max(mood + rng.gauss(0, 0.8), 0.0), 10.0)
        extra: dict[str, Any] = {
            "sleep_total_minutes": sleep,
            "resting_heart_rate": 60 + mood + rng.gauss(0, 1.5),
        }
        if t % 31 == 7:
            extra = {"missing": True, **dict.fromkeys(ANOMALY_FEATURES)}
            sev = None
        events.append(("features", features(t, sev, **extra)))
    return events


def worsening(days: int = 140) -> Events:
    """Stable near 3 for 70 days, then a ramp to 7 with PHQ-9 rising into the moderate band."""
    events: Events = [("genetic", genetic(0, CYP2D6="POOR_METABOLIZER"))]
    for t in range(days):
        sev = 3.0 + 0.3 * ((t * 7) % 5 - 2) / 2
        if t >= 70:
            sev += min(4.0, (t - 70) * 0.4)
        if t == 30:
            events.append(("medication", medication(t, "venlafaxine")))
        if t % 14 == 3:
            phq = round(2.5 * sev)
            items = [min(3, max(0, phq - 3 * i)) for i in range(8)] + [0]
            events.append(("assessment", assessment(t, items)))
        events.append(("features", features(t, sev, resting_heart_rate=62.0 + (t % 3))))
    return events
