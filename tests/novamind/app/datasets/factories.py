"""Small factories of daily-feature records and twin attributes for the export tests."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

START = dt.date(2026, 1, 5)


def pseudonym(n: int) -> str:
    return "p_" + hashlib.sha256(f"patient-{n}".encode()).hexdigest()[:32]


def feature_record(
    patient: str,
    day: dt.date,
    *,
    revision: int = 0,
    passed: bool = True,
    missing: bool = False,
    **values: Any,
) -> dict[str, Any]:
    """A complete ``PatientDailyFeatures`` dict (encodable with the codec)."""
    when = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    record: dict[str, Any] = {
        "event_id": hashlib.sha256(f"{patient}{day}{revision}".encode()).hexdigest()[:32],
        "patient_id": patient,
        "event_time": when,
        "received_time": when,
        "source": "simulator",
        "schema_version": 1,
        "date": day,
        "revision": revision,
        "missing": missing,
        "symptom_severity_by_type": {},
        "rolling_7d": {},
        "normalized": {},
        "completeness": 0.0 if missing else (0.97 if passed else 0.5),
        "outlier_share": 0.0,
        "consistency": 1.0,
        "meets_quality_standards": passed and not missing,
        "late_events": 0,
    }
    for name in (
        "heart_rate_mean", "heart_rate_min", "heart_rate_max", "heart_rate_std", "resting_heart_rate",
        "hrv_rmssd", "hrv_sdnn", "steps_total", "spo2_mean", "respiratory_rate_mean",
        "sleep_total_minutes", "sleep_deep_minutes", "sleep_rem_minutes", "sleep_light_minutes",
        "sleep_awake_minutes", "sleep_efficiency", "symptom_severity_mean", "phq9_total",
        "phq9_change", "gad7_total", "gad7_change",
    ):  # fmt: skip
        record[name] = None
    if not missing:
        record.update(
            heart_rate_mean=70.0 + day.toordinal() % 5,
            steps_total=8000.0,
            sleep_total_minutes=420.0,
            sleep_efficiency=0.9,
            symptom_severity_mean=4.0,
            symptom_severity_by_type={"ANXIETY": 4.0},
            rolling_7d={"days_observed7": 7.0, "heart_rate_mean_mean7": 71.0},
            normalized={"heart_rate_mean": 0.5},
            phq9_total=9,
        )
    record.update(values)
    return record


def cohort(
    patients: int, days: int, *, start: dt.date = START, failing: Iterable[tuple[int, int]] = ()
) -> list[dict[str, Any]]:
    """``patients`` x ``days`` passing records; ``failing`` lists (patient index, day index)."""
    bad = set(failing)
    return [
        feature_record(pseudonym(p), start + dt.timedelta(days=d), passed=(p, d) not in bad)
        for p in range(patients)
        for d in range(days)
    ]
