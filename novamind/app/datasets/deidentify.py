"""Per-export re-keying of pseudonyms and per-patient date shifting (pure).

Re-keying: ``subject_id = 's_' + HMAC-SHA256(export_key, pseudonym)[:32 hex]``. The key is
32 random bytes drawn for each export (:func:`new_export_key`) and dropped when the export is
written, so two exports of the same patients share no subject id and nobody, the exporter
included, can map a subject back to a pseudonym.

Date shifting: each patient's dates move by one whole number of days, drawn at random per
export from ``[-max_days, -1] U [1, max_days]``. Intervals within a patient are kept (windows,
trends, gaps), calendar dates and alignment between patients are not. Day of week is not kept
either, unless ``whole_weeks`` asks for shifts in multiples of seven days.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import random
import secrets
from collections.abc import Iterable

from novamind.app.datasets.exceptions import BadExportParameters
from novamind.app.datasets.schema import SUBJECT_PREFIX

EXPORT_KEY_BYTES = 32


def new_export_key() -> bytes:
    """A fresh random re-keying key (never store it: it would make exports linkable)."""
    return secrets.token_bytes(EXPORT_KEY_BYTES)


def rekey(pseudonym: str, key: bytes) -> str:
    """The export's subject id of ``pseudonym`` under ``key``."""
    if len(key) < EXPORT_KEY_BYTES:
        raise BadExportParameters(f"the re-keying key must have at least {EXPORT_KEY_BYTES} bytes")
    return SUBJECT_PREFIX + hmac.new(key, pseudonym.encode(), hashlib.sha256).hexdigest()[:32]


def draw_shifts(
    patients: Iterable[str], *, max_days: int, rng: random.Random, whole_weeks: bool = False
) -> dict[str, int]:
    """One non-zero shift in days per patient, ``|shift| <= max_days``.

    Patients are visited in sorted order, so a seeded ``rng`` gives reproducible shifts in
    tests; exports pass ``random.SystemRandom()``.
    """
    step = 7 if whole_weeks else 1
    if max_days < step:
        raise BadExportParameters(f"the maximum date shift must be at least {step} day(s), got {max_days}")
    steps = max_days // step
    return {p: rng.choice((-1, 1)) * step * rng.randint(1, steps) for p in sorted(set(patients))}


def shift(day: dt.date, days: int) -> dt.date:
    return day + dt.timedelta(days=days)
