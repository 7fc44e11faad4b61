"""Shared helpers for wearable adapters: local time -> UTC, JSON path labels, numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.exceptions import AdapterError


def zone(name: str) -> ZoneInfo:
    """IANA zone by name; a typed error when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise AdapterError(f"unknown IANA time zone {name!r}") from exc


def local_to_utc(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """Wall-clock ``day clock`` in ``tz`` -> UTC.

    Ambiguous times (DST fall-back) take the first occurrence; times in the spring-forward
    gap are read with the pre-transition offset, i.e. shifted forward by the gap.
    """
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def parse_local(text: str, tz: ZoneInfo, path: str) -> datetime:
    """ISO local timestamp without offset (Fitbit style) -> UTC."""
    try:
        naive = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise AdapterError(f"bad local timestamp {text!r}", path=path) from exc
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return local_to_utc(naive.date(), naive.time(), tz)


def parse_date(text: Any, path: str) -> date:
    try:
        return date.fromisoformat(str(text))
    except ValueError as exc:
        raise AdapterError(f"bad date {text!r}", path=path) from exc


def number(value: Any, path: str) -> float:
    """A JSON number (or numeric string, as Fitbit sends for some totals)."""
    if isinstance(value, bool):
        raise AdapterError(f"expected a number, got {value!r}", path=path)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise AdapterError(f"expected a number, got {value!r}", path=path)


def obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AdapterError("expected a JSON object", path=path)
    return value


def arr(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise AdapterError("expected a JSON array", path=path)
    return value
