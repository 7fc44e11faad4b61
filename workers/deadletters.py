"""Dead-letter records: the original bytes, why they failed, and where they came from."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

DEADLETTER_RECORD = "DeadLetter"


def dead_letter(
    *,
    key: bytes | None,
    value: bytes,
    topic: str,
    partition: int,
    offset: int,
    error_class: str,
    reason: str,
    seen_ms: int,
    source: str = "workers",
) -> dict[str, Any]:
    """A DeadLetter dict; its event id is fixed by the source position, so a replay repeats it."""
    event_id = hashlib.sha256(f"{topic}|{partition}|{offset}".encode()).hexdigest()[:32]
    return {
        "event_id": event_id,
        "source": source,
        "schema_version": 1,
        "original_key": key,
        "original_value": value,
        "error_class": error_class,
        "reason": reason,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "first_seen_time": dt.datetime.fromtimestamp(seen_ms / 1000, tz=dt.UTC),
    }
