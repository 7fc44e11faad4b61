"""Coercion of incoming records (dicts, dataclasses or pydantic models) to plain values.

The twin core accepts records shaped like the contract models (``PatientDailyFeatures``,
``AssessmentResult`` ...) as mappings, dataclasses or pydantic models, so it does not depend
on ``schemas`` at import time. Enum members are reduced to their symbol names.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def as_mapping(record: Any) -> Mapping[str, Any]:
    """Return ``record`` as a read-only mapping without copying where possible.

    Parameters
    ----------
    record
        A mapping, a dataclass instance or a pydantic model.

    Returns
    -------
    Mapping[str, Any]
        Field name to value.
    """
    if isinstance(record, Mapping):
        return record
    if hasattr(record, "model_dump"):
        return dict(record.model_dump())
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    raise TypeError(f"unsupported record type: {type(record).__name__}")


def symbol(value: Any) -> str | None:
    """Return an enum symbol (or string) as ``str``; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def number(value: Any) -> float | None:
    """Return ``value`` as a finite ``float``, or ``None`` when absent or not finite."""
    if value is None or isinstance(value, bool):
        return None
    out = float(value)
    if out != out or out in (float("inf"), float("-inf")):
        return None
    return out


def millis(value: Any) -> int:
    """Return a timestamp as epoch milliseconds (UTC); naive datetimes are taken as UTC."""
    if value is None:
        return 0
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        delta = value - EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return int(value)


def day_ordinal(value: Any) -> int:
    """Return a calendar date as a proleptic Gregorian ordinal.

    Accepts ``datetime.date``, ``datetime.datetime`` (UTC date), an ISO ``str`` or an ``int``
    counting days since 1970-01-01 (the Avro ``date`` logical type).
    """
    if isinstance(value, dt.datetime):
        return millis_to_ordinal(millis(value))
    if isinstance(value, dt.date):
        return value.toordinal()
    if isinstance(value, str):
        return dt.date.fromisoformat(value).toordinal()
    return EPOCH_ORDINAL + int(value)


def millis_to_ordinal(ms: int) -> int:
    """Return the UTC calendar date ordinal of an epoch-milliseconds timestamp."""
    return EPOCH_ORDINAL + ms // 86_400_000


def ordinal_to_date(ordinal: int) -> dt.date:
    """Return the ``datetime.date`` of an ordinal."""
    return dt.date.fromordinal(ordinal)


def millis_to_datetime(ms: int) -> dt.datetime:
    """Return a tz-aware UTC datetime for epoch milliseconds (no float rounding)."""
    return EPOCH + dt.timedelta(milliseconds=ms)
