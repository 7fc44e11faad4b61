"""Per-day wearable signals for one patient, generated in local time and stamped in UTC.

Samples are built on a fast path (vectorised times, a shared record template) that yields
exactly what ``records.biometric_sample`` would.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from connectors.records import METRIC_LOINC, METRIC_UNIT, SCHEMA_VERSION, epoch_ms
from connectors.wearables.common import local_to_utc

SOURCE = "simulator"
EPOCH = 30  # sleep stage granularity (seconds)
# mean episode length in 30 s epochs per stage, early night vs late night
_STAGE_EPOCHS = {"LIGHT": (30, 36), "DEEP": (40, 12), "REM": (10, 40), "AWAKE": (4, 6)}


def sleep_episodes(rng: np.random.Generator, bed_ms: int, hours: float
                   ) -> list[tuple[int, int, str]]:
    """Stage episodes (start ms, seconds, stage) built from 30 s epochs for one night."""
    total = int(hours * 3600 / EPOCH)
    latency = EPOCH * int(rng.integers(20, 60))  # 10-30 min awake before sleep
    out = [(bed_ms, latency, "AWAKE")]
    at, used, i = bed_ms + latency * 1000, 0, 0
    cycle = ("LIGHT", "DEEP", "LIGHT", "REM")
    while used < total:
        stage = cycle[i % 4] if rng.random() > 0.06 else "AWAKE"
        early, late = _STAGE_EPOCHS[stage]
        mean = early + (late - early) * used / max(total, 1)
        epochs = max(1, min(total - used, int(rng.gamma(4.0, mean / 4.0))))
        out.append((at, epochs * EPOCH, stage))
        at += epochs * EPOCH * 1000
        used += epochs
        i += 1
    return out


class _Builder:
    """BiometricSample dicts for one patient-device, ids as in ``records.event_id``."""

    def __init__(self, patient_id: str, device_id: str) -> None:
        self.patient_id, self.device_id = patient_id, device_id

    def __call__(self, metric: str, value: float, ms: int, duration: int | None = None,
                 stage: str | None = None) -> dict[str, Any]:
        key = f"{SOURCE}|{self.device_id}|{metric}|{ms}|{stage or ''}"
        when = datetime.fromtimestamp(ms / 1000, UTC)
        return {"event_id": hashlib.sha256(key.encode()).hexdigest()[:32],
                "patient_id": self.patient_id, "event_time": when, "received_time": when,
                "source": SOURCE, "schema_version": SCHEMA_VERSION, "metric": metric,
                "value": float(value), "unit": METRIC_UNIT[metric], "duration_seconds": duration,
                "sleep_stage": stage, "device_id": self.device_id, "loinc": METRIC_LOINC[metric]}


def day_samples(rng: np.random.Generator, *, patient_id: str, device_id: str, vendor: str,
                tz: ZoneInfo, day: date, mood: float) -> list[dict[str, Any]]:
    """All biometric samples for one local day: HR/5 min, steps/15 min, sleep, RHR, HRV."""
    start = local_to_utc(day, time(0), tz)
    start_ms = epoch_ms(start)
    minutes = int((local_to_utc(day + timedelta(days=1), time(0), tz) - start).total_seconds()
                  // 60)
    rest = 62.0 - 2.5 * mood + rng.normal(0, 1.0)
    wake_h = 6.5 + rng.normal(0, 0.5) - 0.2 * mood
    sleep_h = float(np.clip(7.4 + 0.4 * mood + rng.normal(0, 0.5), 3.5, 10.0))
    bed_h = wake_h + 24 - sleep_h - 0.4
    build = _Builder(patient_id, device_id)

    out = [build("RESTING_HEART_RATE", round(rest, 1), start_ms, 86400)]
    hrv_metric = "HRV_RMSSD" if vendor == "fitbit" else "HRV_SDNN"
    hrv = (42.0 if vendor == "fitbit" else 50.0) + 6.0 * mood + rng.normal(0, 3.0)
    out.append(build(hrv_metric, round(max(5.0, hrv), 1), start_ms))

    hours = np.arange(0, minutes, 5) / 60.0
    awake = (hours > wake_h) & (hours < bed_h)
    circadian = np.where(awake, 12 + 6 * np.sin((hours - 9) / 24 * 2 * np.pi), -3.0)
    activity = np.where(awake, rng.gamma(1.5, max(1.0, 4.0 + mood), hours.size), 0.0)
    hr = np.round(rest + circadian + activity + rng.normal(0, 2.0, hours.size))
    times = (start_ms + np.arange(hours.size) * 300_000).tolist()
    out.extend(build("HEART_RATE", v, ms) for v, ms in zip(hr.tolist(), times, strict=True))

    bins = np.arange(0, minutes, 15) / 60.0
    active = (bins > wake_h) & (bins < bed_h)
    target = max(300.0, 7000 + 2000 * mood + rng.normal(0, 1500))
    weights = np.where(active, rng.gamma(0.8, 1.0, bins.size), 0.0)
    steps = np.round(target * weights / max(weights.sum(), 1e-9))
    times = (start_ms + np.arange(bins.size) * 900_000).tolist()
    out.extend(build("STEPS", v, ms, 900) for v, ms in zip(steps.tolist(), times, strict=True))

    bed_ms = start_ms + int(bed_h * 3_600_000) // 1000 * 1000
    out.extend(build("SLEEP_STAGE", s, ms, s, stage)
               for ms, s, stage in sleep_episodes(rng, bed_ms, sleep_h))
    return out
