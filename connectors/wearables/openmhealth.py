"""Open mHealth data points (header + body) -> BiometricSample dicts.

Supported schemas: ``omh:heart-rate`` (``beats/min``), ``omh:step-count`` (1.x number or
2.x ``{value, unit: steps}``) and ``omh:sleep-episode`` (one ASLEEP episode).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from connectors.exceptions import AdapterError
from connectors.records import biometric_sample
from connectors.wearables.common import arr, number, obj

SOURCE = "openmhealth"
DURATION_SECONDS = {"sec": 1, "s": 1, "min": 60, "h": 3600, "d": 86400}


def _instant(value: Any, path: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise AdapterError(f"bad date_time {value!r}", path=path) from exc
    if when.tzinfo is None:
        raise AdapterError("date_time must carry a UTC offset", path=path)
    return when


def _frame(body: dict[str, Any], path: str) -> tuple[datetime, datetime | None]:
    frame = obj(body.get("effective_time_frame"), f"{path}.effective_time_frame")
    if "date_time" in frame:
        return _instant(frame["date_time"], f"{path}.effective_time_frame.date_time"), None
    base = f"{path}.effective_time_frame.time_interval"
    interval = obj(frame.get("time_interval"), base)
    start = _instant(interval.get("start_date_time"), f"{base}.start_date_time")
    if "end_date_time" in interval:
        return start, _instant(interval["end_date_time"], f"{base}.end_date_time")
    dur = obj(interval.get("duration"), f"{base}.duration")
    unit = DURATION_SECONDS.get(str(dur.get("unit")))
    if unit is None:
        raise AdapterError(f"unknown duration unit {dur.get('unit')!r}", path=f"{base}.duration")
    return start, start + timedelta(seconds=number(dur.get("value"), f"{base}.duration") * unit)


def _unit_value(value: Any, unit: str, path: str) -> float:
    if isinstance(value, dict):
        if value.get("unit") != unit:
            raise AdapterError(f"unit {value.get('unit')!r} is not {unit!r}", path=f"{path}.unit")
        return number(value.get("value"), f"{path}.value")
    return number(value, path)


def data_point_sample(point: Any, *, patient_id: str, device_id: str, path: str = "$",
                      received_time: datetime | None = None) -> dict[str, Any]:
    """Map one data point; an unsupported schema is an ``AdapterError``."""
    point = obj(point, path)
    header = obj(point.get("header"), f"{path}.header")
    schema = obj(header.get("schema_id"), f"{path}.header.schema_id")
    name = f"{schema.get('namespace')}:{schema.get('name')}"
    body = obj(point.get("body"), f"{path}.body")
    start, end = _frame(body, f"{path}.body")
    common: dict[str, Any] = {"patient_id": patient_id, "source": SOURCE, "device_id": device_id,
              "event_time": start, "received_time": received_time}
    span = int((end - start).total_seconds()) if end else None
    if name == "omh:heart-rate":
        value = _unit_value(body.get("heart_rate"), "beats/min", f"{path}.body.heart_rate")
        return biometric_sample(metric="HEART_RATE", value=value, **common)
    if name == "omh:step-count":
        value = _unit_value(body.get("step_count"), "steps", f"{path}.body.step_count")
        return biometric_sample(metric="STEPS", value=value, duration_seconds=span, **common)
    if name == "omh:sleep-episode":
        total = body.get("total_sleep_time")
        seconds = span
        if total is not None:
            tpath = f"{path}.body.total_sleep_time"
            factor = DURATION_SECONDS.get(str(obj(total, tpath).get("unit")))
            if factor is None:
                raise AdapterError(f"unknown unit {total.get('unit')!r}", path=f"{tpath}.unit")
            seconds = int(number(total.get("value"), f"{tpath}.value") * factor)
        if not seconds or seconds <= 0:
            raise AdapterError("sleep episode has no duration", path=f"{path}.body")
        return biometric_sample(metric="SLEEP_STAGE", value=seconds, duration_seconds=seconds,
                                sleep_stage="ASLEEP", **common)
    raise AdapterError(f"unsupported schema {name!r}", path=f"{path}.header.schema_id")


def parse_omh(payload: Any, *, patient_id: str, device_id: str,
              received_time: datetime | None = None,
              errors: list[AdapterError] | None = None) -> list[dict[str, Any]]:
    """Map one data point or an array of them; see ``apple_health.parse_export`` for ``errors``."""
    points = arr(payload, "$") if isinstance(payload, list) else [payload]
    out = []
    for i, point in enumerate(points):
        path = f"$[{i}]" if isinstance(payload, list) else "$"
        try:
            out.append(data_point_sample(point, patient_id=patient_id, device_id=device_id,
                                         path=path, received_time=received_time))
        except AdapterError as exc:
            if errors is None:
                raise
            errors.append(exc)
    return out
