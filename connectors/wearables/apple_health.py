"""Apple Health ``export.xml`` -> BiometricSample dicts, streamed with ``iterparse``.

Elements are cleared as soon as they are read, so memory stays flat on multi-GB exports.
``HeartRateVariabilitySDNN`` is SDNN (HRV_SDNN); oxygen saturation is exported as a fraction
and emitted in percent. Broken XML raises ``AdapterError`` with the line number; a bad record
is reported with its XPath-like position (``/HealthData/Record[12]``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from connectors.exceptions import AdapterError
from connectors.records import biometric_sample

SOURCE = "apple_health"
QUANTITIES: dict[str, tuple[str, str]] = {  # HK type -> (metric, expected unit)
    "HKQuantityTypeIdentifierHeartRate": ("HEART_RATE", "count/min"),
    "HKQuantityTypeIdentifierRestingHeartRate": ("RESTING_HEART_RATE", "count/min"),
    "HKQuantityTypeIdentifierHeartRateVariabilitySDNN": ("HRV_SDNN", "ms"),
    "HKQuantityTypeIdentifierStepCount": ("STEPS", "count"),
    "HKQuantityTypeIdentifierOxygenSaturation": ("SPO2", "%"),
    "HKQuantityTypeIdentifierRespiratoryRate": ("RESPIRATORY_RATE", "count/min"),
}
SLEEP_TYPE = "HKCategoryTypeIdentifierSleepAnalysis"
SLEEP_VALUES: dict[str, str | None] = {
    "HKCategoryValueSleepAnalysisInBed": None,  # time in bed is not a sleep stage
    "HKCategoryValueSleepAnalysisAsleep": "ASLEEP",
    "HKCategoryValueSleepAnalysisAsleepUnspecified": "ASLEEP",
    "HKCategoryValueSleepAnalysisAwake": "AWAKE",
    "HKCategoryValueSleepAnalysisAsleepCore": "LIGHT",
    "HKCategoryValueSleepAnalysisAsleepDeep": "DEEP",
    "HKCategoryValueSleepAnalysisAsleepREM": "REM",
}
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


def _time(attrs: dict[str, str], name: str, path: str) -> datetime:
    try:
        return datetime.strptime(attrs[name], _DATE_FORMAT)
    except (KeyError, ValueError) as exc:
        raise AdapterError(f"bad {name} {attrs.get(name)!r}", path=f"{path}/@{name}") from exc


def _value(attrs: dict[str, str], path: str) -> float:
    try:
        return float(attrs["value"])
    except (KeyError, ValueError) as exc:
        raise AdapterError(f"bad value {attrs.get('value')!r}", path=f"{path}/@value") from exc


def record_sample(attrs: dict[str, str], *, patient_id: str, device_id: str, path: str,
                  received_time: datetime | None = None) -> dict[str, Any] | None:
    """Map one ``Record`` element's attributes; None for types and values we do not map."""
    rtype = attrs.get("type", "")
    start = _time(attrs, "startDate", path)
    common: dict[str, Any] = {"patient_id": patient_id, "source": SOURCE, "device_id": device_id,
              "event_time": start, "received_time": received_time,
              "id_key": f"{device_id}/{attrs.get('sourceName', '')}"}
    if rtype == SLEEP_TYPE:
        if attrs.get("value") not in SLEEP_VALUES:
            raise AdapterError(f"unknown sleep value {attrs.get('value')!r}", path=f"{path}/@value")
        stage = SLEEP_VALUES[attrs["value"]]
        if stage is None:
            return None
        seconds = int((_time(attrs, "endDate", path) - start).total_seconds())
        if seconds <= 0:
            raise AdapterError("sleep interval ends before it starts", path=path)
        return biometric_sample(metric="SLEEP_STAGE", value=seconds, duration_seconds=seconds,
                                sleep_stage=stage, **common)
    if rtype not in QUANTITIES:
        return None
    metric, unit = QUANTITIES[rtype]
    if attrs.get("unit") != unit:
        raise AdapterError(f"unit {attrs.get('unit')!r} is not {unit!r} for {rtype}",
                           path=f"{path}/@unit")
    value = _value(attrs, path)
    duration = None
    if metric == "SPO2":
        if not 0.0 <= value <= 1.0:
            raise AdapterError(f"oxygen saturation {value} is not a fraction",
                               path=f"{path}/@value")
        value *= 100.0
    elif metric == "STEPS":
        duration = int((_time(attrs, "endDate", path) - start).total_seconds())
    return biometric_sample(metric=metric, value=value, duration_seconds=duration, **common)


def parse_export(source: str | Path | IO[bytes], *, patient_id: str, device_id: str,
                 received_time: datetime | None = None,
                 errors: list[AdapterError] | None = None) -> Iterator[dict[str, Any]]:
    """Stream samples from ``export.xml``.

    A bad record raises, unless ``errors`` is given: then it is appended there and skipped.
    """
    name = str(source) if isinstance(source, str | Path) else getattr(source, "name", "<stream>")
    depth, ordinal, root = 0, 0, None
    try:
        # Apple exports carry an internal DTD, so DTDs cannot be refused; expat >= 2.4 bounds
        # entity amplification and never fetches external entities.
        for event, elem in ET.iterparse(source, events=("start", "end")):  # noqa: S314
            if event == "start":
                depth += 1
                root = elem if root is None else root
                continue
            depth -= 1
            if depth != 1:
                continue  # nested metadata; cleared with its parent
            if elem.tag == "Record":
                ordinal += 1
                path = f"/HealthData/Record[{ordinal}]"
                try:
                    sample = record_sample(dict(elem.attrib), patient_id=patient_id,
                                           device_id=device_id, path=path,
                                           received_time=received_time)
                except AdapterError as exc:
                    if errors is None:
                        raise
                    errors.append(exc)
                    sample = None
                if sample is not None:
                    yield sample
            elem.clear()
            if root is not None:
                root.clear()
    except ET.ParseError as exc:
        line, _col = exc.position
        raise AdapterError(f"malformed XML: {exc}", path=name, line=line) from exc
