"""A patient's window state as small keyed parts: what a batch changed, and loading back.

Keys (after the patient pseudonym and ``|``), each a compact JSON value:

* ``h``: the head (stream clock, closing cursor, days awaiting revision, source offsets
  folded in, the newest sample time of each device stream) - changes with every event;
* ``p``: the profile (assessments, feature normaliser, context dedup, reject counts);
* ``d|<day>``: a day's meta (histograms, sleep, symptoms, counters, bookkeeping), and for a
  *cold* day (before yesterday) also all its hours;
* ``c|<day>|<hour>``: one hour's moments and event-id fingerprints, packed (see
  :meth:`DayWindow.cell`), for *hot* days only;
* ``l|<stream>/<day>``: 64-bit fingerprints carried over from a version-2 state.

A live event therefore rewrites the head, one day meta and one hour cell (a few hundred
bytes), however much history the patient has. When the watermark
leaves a day behind (it turns cold), the day is written once as one record and its cells
are deleted, so a patient's history is about one record per day (fast restores); a late
event into a cold day rewrites that day's record. A deleted day is a
key *prefix* (``d|<day>`` and ``c|<day>|``): the store expands it into its keys.
Pure: no I/O; the worker's store passes ``get``/``scan`` functions in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from workers.features.day import DayWindow
from workers.features.patient import (
    DAY_MS,
    DEFAULT_WINDOWS,
    DayMap,
    PatientState,
    WindowConfig,
    decode_legacy,
    encode_legacy,
)

SEP = "|"
Scan = Callable[[str], Iterable[tuple[str, bytes]]]


def day_key(day: int) -> str:
    return f"d{SEP}{day:06d}"


def cell_prefix(day: int) -> str:
    return f"c{SEP}{day:06d}{SEP}"


def patient_of(key: str) -> str:
    return key.split(SEP, 1)[0]


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def take_changes(state: PatientState, fence: dict[str, int]) -> tuple[dict[str, bytes | None], list[str]]:
    """The parts a write must carry (``None`` deletes) and the prefixes of deleted days;
    clears the state's change tracking."""
    puts: dict[str, bytes | None] = {}
    if state.profile_changed:
        puts["p"] = _dump(state.profile())
        state.profile_changed = False
    hot_from = state.watermark // DAY_MS - 1
    was_hot = hot_from if state.hot_from is None else state.hot_from
    cooled = [d for d in range(was_hot, hot_from) if d in state.days]
    state.hot_from = hot_from
    for day in cooled:  # written whole once; their cells go
        window = state.days[day]
        puts[day_key(day)] = window.whole()
        for hour in window.hours() | window.changed_hours:
            puts[f"{cell_prefix(day)}{hour:02d}"] = None
        window.changed_hours.clear()
    for day in state.changed_days:
        window = state.days[day]
        if day < hot_from:
            if day not in cooled:
                puts[day_key(day)] = window.whole()
        else:
            puts[day_key(day)] = _dump(window.meta())
            for hour in window.changed_hours:
                cell = window.cell(hour)
                puts[f"{cell_prefix(day)}{hour:02d}"] = cell
        window.changed_hours.clear()
    state.changed_days.clear()
    puts["h"] = _dump({**state.head(), "devices": state.devices, "fence": fence})
    for key in state.deleted_legacy:
        puts[f"l{SEP}{key}"] = None
    state.deleted_legacy.clear()
    deleted = [p for day in sorted(state.deleted_days) for p in (day_key(day), cell_prefix(day))]
    state.deleted_days.clear()
    return puts, deleted


def all_parts(state: PatientState, fence: dict[str, int]) -> dict[str, bytes | None]:
    """Every part of a state (a migration writes them all once)."""
    state.profile_changed = True
    state.changed_days.update(state.days)
    state.hot_from = None
    for day in state.days:
        window = state.days[day]
        window.changed_hours.update(window.hours())
    puts, _ = take_changes(state, fence)
    for key, fingerprints in state.legacy.items():
        puts[f"l{SEP}{key}"] = encode_legacy(fingerprints).encode()
    return puts


def load_state(
    patient_id: str,
    get: Callable[[str], bytes | None],
    scan: Scan,
    config: WindowConfig = DEFAULT_WINDOWS,
) -> tuple[PatientState, dict[str, int]] | None:
    """A patient's state and fence from its parts (days load lazily); None if it has none."""
    raw_head = get("h")
    if raw_head is None:
        return None
    head = json.loads(raw_head)
    raw_profile = get("p")
    state = PatientState(patient_id, config)
    state.restore_head(head, json.loads(raw_profile) if raw_profile else state.profile())
    state.devices = {k: list(v) for k, v in head["devices"].items()}
    known = [int(k.split(SEP)[1]) for k, _ in scan(f"d{SEP}")]
    state.days = DayMap(known, partial(_load_day, get, scan))
    state.legacy = {k[2:]: decode_legacy(v.decode()) for k, v in scan(f"l{SEP}")}
    return state, dict(head["fence"])


def _load_day(get: Callable[[str], bytes | None], scan: Scan, day: int) -> DayWindow:
    raw = get(day_key(day))
    assert raw is not None, f"day {day} is listed but not stored"
    if raw[:1] == b"W":  # a cold day, stored whole
        return DayWindow.from_whole(day, raw)
    prefix = cell_prefix(day)
    cells = {int(k[len(prefix) :]): v for k, v in scan(prefix)}
    return DayWindow.from_parts(day, json.loads(raw), cells)
