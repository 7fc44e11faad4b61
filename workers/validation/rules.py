"""Pure validation of decoded events (plain dicts keyed like the schemas' records).

Each ``validate_*`` returns either a small normalised record (``Sample``, ``Symptom``,
``Assessment``) or a :class:`ValidationError` subclass; nothing is raised and nothing
reads a clock (``now_ms`` is passed in). Enum values may be ``str`` or ``StrEnum``;
timestamps may be tz-aware ``datetime`` or epoch milliseconds (``int``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from workers.validation.catalog import (
    BANDS,
    INSTRUMENTS,
    METRICS,
    SEVERITY_MAX,
    SEVERITY_MIN,
    SLEEP_STAGES,
    STEPS_PER_MIN_HARD,
    STEPS_PER_MIN_TYPICAL,
    SYMPTOM_TYPES,
    band_for,
)
from workers.validation.exceptions import (
    FutureTimestamp,
    Inconsistent,
    InvalidType,
    MissingField,
    OutOfRange,
    UnitMismatch,
    UnknownCode,
    ValidationError,
)

_PSEUDONYM = re.compile(r"p_[0-9a-f]{32}")
_ENVELOPE = ("event_id", "patient_id", "event_time", "source")


@dataclass(frozen=True, slots=True)
class ValidationConfig:
    """Clock-skew allowance and the earliest plausible event time (2000-01-01 UTC)."""

    max_future_skew_ms: int = 5 * 60 * 1000
    min_event_time_ms: int = 946_684_800_000


DEFAULT_CONFIG = ValidationConfig()


@lru_cache(maxsize=65536)
def is_pseudonym(value: str) -> bool:
    """True for 'p_' + 32 lower-case hex characters (cached: ids repeat per patient)."""
    return _PSEUDONYM.fullmatch(value) is not None


class Sample:
    """A validated biometric sample; ``outlier`` = outside the typical (plausible) range.

    ``received`` is ``received_time`` in epoch ms (None when absent or unreadable): samples
    of one device stream sharing it came in one delivery (one sync).
    """

    __slots__ = (
        "device_id",
        "duration_s",
        "event_id",
        "metric",
        "outlier",
        "received",
        "stage",
        "t",
        "value",
    )

    def __init__(
        self,
        event_id: str,
        t: int,
        metric: str,
        value: float,
        device_id: str,
        stage: str | None,
        duration_s: float | None,
        outlier: bool,
        received: int | None,
    ) -> None:
        self.event_id = event_id
        self.t = t
        self.metric = metric
        self.value = value
        self.device_id = device_id
        self.stage = stage
        self.duration_s = duration_s
        self.outlier = outlier
        self.received = received


class Symptom:
    """A validated symptom report."""

    __slots__ = ("event_id", "severity", "symptom_type", "t")

    def __init__(self, event_id: str, t: int, symptom_type: str, severity: int) -> None:
        self.event_id = event_id
        self.t = t
        self.symptom_type = symptom_type
        self.severity = severity


class Assessment:
    """A validated PHQ-9 / GAD-7 result."""

    __slots__ = ("event_id", "instrument", "submission_id", "t", "total")

    def __init__(self, event_id: str, t: int, instrument: str, total: int, submission_id: str) -> None:
        self.event_id = event_id
        self.t = t
        self.instrument = instrument
        self.total = total
        self.submission_id = submission_id


def to_millis(value: Any, field: str = "event_time") -> int | ValidationError:
    """Epoch milliseconds from an int or a tz-aware datetime."""
    if type(value) is int:
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return InvalidType(field, "naive datetime: timestamps must be tz-aware UTC")
        return int(value.timestamp() * 1000)
    if value is None:
        return MissingField(field, "required field is null")
    return InvalidType(field, f"expected timestamp, got {type(value).__name__}")


def check_envelope(
    event: Mapping[str, Any],
    now_ms: int,
    config: ValidationConfig = DEFAULT_CONFIG,
    *,
    earliest: bool = True,
) -> int | ValidationError:
    """Check the envelope fields; return event_time in epoch ms or the error. Without
    ``earliest`` an event time of any age is plausible (EHR history: a diagnosis from 1990)."""
    get = event.get
    event_id, pid, t = get("event_id"), get("patient_id"), get("event_time")
    if event_id is None or pid is None or t is None or get("source") is None:
        for name in _ENVELOPE:
            if get(name) is None:
                return MissingField(name, "required field is missing or null")
    if type(event_id) is not str or not event_id:
        return InvalidType("event_id", "must be a non-empty string")
    if type(pid) is not str or not is_pseudonym(pid):
        return InvalidType("patient_id", "must be a pseudonym 'p_' + 32 lower-case hex")
    if type(t) is not int:
        t = to_millis(t)
        if isinstance(t, ValidationError):
            return t
    if t > now_ms + config.max_future_skew_ms:
        return FutureTimestamp(
            "event_time", f"{t - now_ms} ms ahead of now (skew {config.max_future_skew_ms} ms)"
        )
    if earliest and t < config.min_event_time_ms:
        return OutOfRange("event_time", f"{t} ms is before {config.min_event_time_ms}")
    return t


def _number(event: Mapping[str, Any], field: str) -> float | ValidationError:
    v: Any = event.get(field)
    tv = type(v)
    if tv is float or tv is int:
        if v != v or v in (float("inf"), float("-inf")):
            return InvalidType(field, "must be finite")
        return float(v)
    if v is None:
        return MissingField(field, "required field is missing or null")
    return InvalidType(field, f"expected number, got {tv.__name__}")


def validate_biometric(
    event: Mapping[str, Any], now_ms: int, config: ValidationConfig = DEFAULT_CONFIG
) -> Sample | ValidationError:
    """Validate a BiometricSample dict (range, unit, timestamp, stage, interval)."""
    t = check_envelope(event, now_ms, config)
    if isinstance(t, ValidationError):
        return t
    metric: Any = event.get("metric")
    spec = METRICS.get(metric)
    if spec is None:
        if metric is None:
            return MissingField("metric", "required field is missing or null")
        return UnknownCode("metric", f"unknown metric {metric!r}")
    value = event.get("value")
    if type(value) is not float or value - value != 0.0:  # slow path: int, nan/inf, wrong
        value = _number(event, "value")
        if isinstance(value, ValidationError):
            return value
    unit = event.get("unit")
    if unit != spec.unit:
        if unit is None:
            return MissingField("unit", "required field is missing or null")
        return UnitMismatch("unit", f"{metric} expects {spec.unit!r}, got {unit!r}")
    device_id = event.get("device_id")
    if type(device_id) is not str or not device_id:
        return MissingField("device_id", "required non-empty string")
    if value < spec.hard_lo or value > spec.hard_hi:
        bounds = f"[{spec.hard_lo}, {spec.hard_hi}]"
        return OutOfRange("value", f"{metric} {value} {unit} outside {bounds}")
    outlier = value < spec.typ_lo or value > spec.typ_hi
    stage = None
    duration = event.get("duration_seconds")
    if duration is not None:
        if type(duration) is not int and type(duration) is not float:
            return InvalidType("duration_seconds", "expected number")
        if duration <= 0 or duration > 86400:
            return OutOfRange("duration_seconds", f"{duration} outside (0, 86400]")
    if metric == "STEPS":
        if duration is not None:
            rate = value * 60.0 / duration
            if rate > STEPS_PER_MIN_HARD:
                return OutOfRange("value", f"{rate:.0f} steps/min above {STEPS_PER_MIN_HARD}")
            outlier = rate > STEPS_PER_MIN_TYPICAL
    elif metric == "SLEEP_STAGE":
        stage = event.get("sleep_stage")
        if stage not in SLEEP_STAGES:
            if stage is None:
                return MissingField("sleep_stage", "required for SLEEP_STAGE")
            return UnknownCode("sleep_stage", f"unknown sleep stage {stage!r}")
        if duration is not None and abs(duration - value) > 1:
            return Inconsistent("duration_seconds", f"{duration} != value {value} s")
        duration = value
    received = event.get("received_time")
    if type(received) is not int:
        if isinstance(received, datetime) and received.tzinfo is not None:
            received = int(received.timestamp() * 1000)
        else:
            received = None
    return Sample(event["event_id"], t, metric, value, device_id, stage, duration, outlier, received)


def validate_symptom(
    event: Mapping[str, Any], now_ms: int, config: ValidationConfig = DEFAULT_CONFIG
) -> Symptom | ValidationError:
    """Validate a SymptomReport dict (known type, integer severity 0..10)."""
    t = check_envelope(event, now_ms, config)
    if isinstance(t, ValidationError):
        return t
    st = event.get("symptom_type")
    if st not in SYMPTOM_TYPES:
        if st is None:
            return MissingField("symptom_type", "required field is missing or null")
        return UnknownCode("symptom_type", f"unknown symptom type {st!r}")
    sev = event.get("severity")
    if type(sev) is not int:
        if sev is None:
            return MissingField("severity", "required field is missing or null")
        return InvalidType("severity", f"expected int, got {type(sev).__name__}")
    if sev < SEVERITY_MIN or sev > SEVERITY_MAX:
        return OutOfRange("severity", f"{sev} outside [{SEVERITY_MIN}, {SEVERITY_MAX}]")
    return Symptom(event["event_id"], t, str(st), sev)


def validate_assessment(
    event: Mapping[str, Any], now_ms: int, config: ValidationConfig = DEFAULT_CONFIG
) -> Assessment | ValidationError:
    """Validate an AssessmentResult dict (items, total, band, item 9 flag, LOINC) of a PHQ-9,
    a GAD-7 or a PHQ9_ITEM9 screen (1 item, total 0-3, band UNKNOWN)."""
    t = check_envelope(event, now_ms, config)
    if isinstance(t, ValidationError):
        return t
    instrument: Any = event.get("instrument")
    info = INSTRUMENTS.get(instrument)
    if info is None:
        if instrument is None:
            return MissingField("instrument", "required field is missing or null")
        return UnknownCode("instrument", f"unknown instrument {instrument!r}")
    n_items, item_max, loinc, item9_at = info
    sub = event.get("submission_id")
    if type(sub) is not str or not sub:
        return MissingField("submission_id", "required non-empty string")
    items = event.get("item_responses")
    if not isinstance(items, list | tuple):
        if items is None:
            return MissingField("item_responses", "required field is missing or null")
        return InvalidType("item_responses", "expected a list of int")
    if len(items) != n_items:
        return Inconsistent("item_responses", f"{instrument} has {n_items} items, got {len(items)}")
    for i, item in enumerate(items):
        if type(item) is not int:
            return InvalidType(f"item_responses[{i}]", "expected int")
        if item < 0 or item > item_max:
            return OutOfRange(f"item_responses[{i}]", f"{item} outside [0, {item_max}]")
    total = event.get("total")
    if type(total) is not int:
        return (
            MissingField("total", "required int") if total is None else InvalidType("total", "expected int")
        )
    if total != sum(items):
        return Inconsistent("total", f"{total} != sum of items {sum(items)}")
    band = event.get("band")
    expected = band_for(instrument, total)  # UNKNOWN for the unbanded PHQ9_ITEM9 screen
    if band not in BANDS and band != expected:
        return UnknownCode("band", f"unknown band {band!r}")
    if band != expected:
        return Inconsistent("band", f"{band} does not match total {total}")
    item9 = item9_at is not None and items[item9_at] >= 1
    if event.get("item9_positive") is not item9:
        return Inconsistent("item9_positive", f"expected {item9} from item_responses")
    code = event.get("loinc_total")
    if code is not None and code != loinc:
        return UnknownCode("loinc_total", f"{code!r} is not the {instrument} total {loinc}")
    return Assessment(event["event_id"], t, str(instrument), total, sub)
