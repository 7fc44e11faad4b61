"""A patient's window state as small keyed parts: what a batch changed, and loading back.

Keys (after the patient pseudonym and ``|``):

* ``h``: the head (stream clock, closing cursor, days awaiting revision, source offsets
  folded in, the newest sample time of each device stream, and the index of the stored days)
  - changes with every event; packed (:func:`pack_head`);
* ``p``: the profile (assessments, feature normaliser, context dedup, reject counts), JSON;
* ``d|<day>``: a day's meta (histograms, sleep, symptoms, counters, bookkeeping), packed
  (:meth:`DayWindow.packed_meta`), and for a *cold* day (before yesterday) also all its hours;
* ``c|<day>|<hour>``: one hour's moments and event-id fingerprints, packed (see
  :meth:`DayWindow.cell`), for *hot* days only;
* ``l|<stream>/<day>``: 64-bit fingerprints carried over from a version-2 state;
* ``j``: the journal, the samples folded since the parts above were last written
  (:mod:`workers.features.journal`); loading folds them again.

A live sample is therefore written as the patient's journal, a few dozen bytes per sample
since the last snapshot of its parts; a snapshot rewrites the head, the day metas and the hour
cells changed since the one before (a few hundred bytes), however much history the patient has.
When the watermark leaves a day behind (it turns cold), the day is written once as one record
and its cells are deleted, so a patient's history is about one record per day (fast
restores); a late event into a cold day rewrites that day's record. A deleted day is a key
*prefix* (``d|<day>`` and ``c|<day>|``): the store expands it into its keys.

Loading a patient (a replica that holds fewer patients than it owns does so at their next
event) reads the head, the profile and the journal; a day is read when first used, and an hour
cell when an event lands in it (:class:`~workers.features.day.StoredCells`). So a live event
of a patient not in memory costs five reads, however long its history.
Pure: no I/O; the worker's store passes ``get``/``scan`` functions in.

Version-3 state wrote the head and day metas as JSON: they are still read (a JSON value starts
with ``{``, a packed one never does), so an upgraded replica keeps its stores and changelog,
and rewrites each part packed the next time it changes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from workers.features.day import WHOLE, WHOLE_V3, DayWindow, StoredCells
from workers.features.journal import fence_bytes, name_bytes, read_fence, read_name
from workers.features.journal import unpack as unpack_journal
from workers.features.patient import (
    DAY_MS,
    DEFAULT_WINDOWS,
    DayMap,
    PatientState,
    WindowConfig,
    decode_legacy,
    encode_legacy,
)
from workers.features.streams import NEVER, STREAM_INDEX, STREAMS

SEP = "|"
JOURNAL = "j"
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
    """The parts a write must carry (``None`` deletes) and the prefixes of deleted days: the
    journal alone while it holds every change since the last snapshot, else a snapshot of the
    changed parts, which clears the state's change tracking and the journal."""
    journal = state.journal
    if journal.writable() and not state.profile_changed:
        journal.stored = True
        return {JOURNAL: journal.pack(fence)}, []
    puts: dict[str, bytes | None] = {}
    if journal.stored:
        puts[JOURNAL] = None
    journal.reset()
    if state.profile_changed:
        puts["p"] = _dump(state.profile())
        state.profile_changed = False
    # days before yesterday are cold; a patient with no event folded in yet has none
    hot_from = None if state.watermark == NEVER else state.watermark // DAY_MS - 1
    was_hot = state.hot_from
    cooled = []
    if hot_from is not None and was_hot is not None and was_hot < hot_from:
        cooled = [d for d in state.days if was_hot <= d < hot_from]
    state.hot_from = hot_from
    for day in cooled:  # written whole once; their cells go
        window = state.days[day]
        puts[day_key(day)] = window.whole()
        for hour in window.hours() | window.changed_hours:
            puts[f"{cell_prefix(day)}{hour:02d}"] = None
        window.changed_hours.clear()
    for day in state.changed_days:
        window = state.days[day]
        if hot_from is not None and day < hot_from:
            if day not in cooled:
                puts[day_key(day)] = window.whole()
        else:
            puts[day_key(day)] = window.packed_meta()
            for hour in window.changed_hours:
                cell = window.cell(hour)
                puts[f"{cell_prefix(day)}{hour:02d}"] = cell
        window.changed_hours.clear()
    state.changed_days.clear()
    puts["h"] = pack_head(state, fence)
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
    head = json.loads(raw_head) if raw_head[:1] == b"{" else unpack_head(raw_head)
    raw_profile = get("p")
    state = PatientState(patient_id, config)
    state.restore_head(head)
    if raw_profile:
        state.defer_profile(raw_profile)
    state.devices = {k: list(v) for k, v in head["devices"].items()}
    known = head.get("stored_days")
    if known is None:  # a head without the index
        known = [int(k.split(SEP)[1]) for k, _ in scan(f"d{SEP}")]
    state.days = DayMap(known, partial(_load_day, get, scan))
    if head.get("has_legacy", True):
        state.legacy = {k[2:]: decode_legacy(v.decode()) for k, v in scan(f"l{SEP}")}
    fence = dict(head["fence"])
    raw_journal = get(JOURNAL)
    if raw_journal is not None:
        fence, samples = unpack_journal(raw_journal)
        for sample, fp in samples:
            state.refold(sample, fp)
        state.journal.stored = True
    return state, fence


def _load_day(get: Callable[[str], bytes | None], scan: Scan, day: int) -> DayWindow:
    raw = get(day_key(day))
    assert raw is not None, f"day {day} is listed but not stored"
    if raw[:1] in (WHOLE, WHOLE_V3):  # a cold day, stored whole
        return DayWindow.from_whole(day, raw)
    prefix = cell_prefix(day)
    cells = StoredCells(
        lambda hour: get(f"{prefix}{hour:02d}"),
        lambda: {int(k[len(prefix) :]): v for k, v in scan(prefix)},
    )
    return DayWindow.from_parts(day, json.loads(raw) if raw[:1] == b"{" else raw, cells)


# ---- the packed head -----------------------------------------------------------------------
_HEAD = struct.Struct("<cqqqqqBBHHB")  # tag, watermark, floor, cursor, start, hot, flags, counts
_MARK = struct.Struct("<Bq")
_DEVICE = struct.Struct("<qqB")
_DAYS = struct.Struct("<iI")
_FLAG = struct.Struct("<?")
INDEXED = b"I"  # a head with the index of the stored parts (``H``: the release before, without)


def pack_head(state: PatientState, fence: dict[str, int]) -> bytes:
    """The head packed (little-endian): the tag ``I``; watermark, floor, cursor, start day and
    hot-from (flags say which of the last three are None); the counts of stream marks, days
    awaiting revision, device streams and fenced topics; then each mark (stream index, time),
    the days (32-bit), each device stream (newest time, received time, flags, name) and each
    topic (offset, name); last, the index of the patient's stored parts: the days of its ``d|``
    parts (:func:`pack_days`) and whether it has ``l|`` parts. Names are length-prefixed
    UTF-8. Flags: bit 0, 1, 2 set when the cursor, start day or hot-from is None.

    The index lets a load skip listing the store: a patient's load costs the same whatever its
    history. A head is written with every snapshot, which also writes every day it lists; the
    ``H`` head of the release before (no index) is still read, and listed."""
    clock = state.clock
    cursor, start, hot = state.cursor, state.start_day, state.hot_from
    flags = (cursor is None) | (start is None) << 1 | (hot is None) << 2
    marks, dirty, devices = clock.marks, state.dirty_days, state.devices
    out = [
        _HEAD.pack(
            INDEXED,
            clock.watermark,
            clock.floor,
            cursor or 0,
            start or 0,
            hot or 0,
            flags,
            len(marks),
            len(dirty),
            len(devices),
            len(fence),
        ),
        b"".join(_MARK.pack(STREAM_INDEX[s], t) for s, t in marks.items()),
        struct.pack(f"<{len(dirty)}i", *sorted(dirty)),
    ]
    for name, (newest, received) in devices.items():
        none = (newest is None) | (received is None) << 1
        out += [_DEVICE.pack(newest or 0, received or 0, none), name_bytes(name)]
    out.append(fence_bytes(fence))
    out += [pack_days(list(state.days)), _FLAG.pack(bool(state.legacy))]  # listed, not loaded
    return b"".join(out)


def pack_days(days: list[int]) -> bytes:
    """Sorted days as the first one and the span (32-bit each), then a bitmap over the span:
    a month of days in 12 bytes."""
    first = days[0] if days else 0
    span = days[-1] - first + 1 if days else 0
    bits = bytearray((span + 7) // 8)
    for day in days:
        i = day - first
        bits[i >> 3] |= 1 << (i & 7)
    return _DAYS.pack(first, span) + bits


def unpack_days(raw: bytes, o: int) -> tuple[list[int], int]:
    """Inverse of :func:`pack_days`: the days at ``o``, and the offset after them."""
    first, span = _DAYS.unpack_from(raw, o)
    o += _DAYS.size
    bits = raw[o : o + (span + 7) // 8]
    return [first + i for i in range(span) if bits[i >> 3] >> (i & 7) & 1], o + len(bits)


def unpack_head(raw: bytes) -> dict[str, Any]:
    """Inverse of :func:`pack_head`, as the dict the JSON head of version 3 held, with
    ``stored_days`` and ``has_legacy`` from an indexed head."""
    (_tag, watermark, floor, cursor, start, hot, flags, n_marks, n_dirty, n_devices, n_fence) = (
        _HEAD.unpack_from(raw)
    )
    o = _HEAD.size
    marks = {}
    for _ in range(n_marks):
        stream, t = _MARK.unpack_from(raw, o)
        marks[STREAMS[stream]] = t
        o += _MARK.size
    dirty = list(struct.unpack_from(f"<{n_dirty}i", raw, o))
    o += 4 * n_dirty
    devices: dict[str, list[int | None]] = {}
    for _ in range(n_devices):
        newest, received, none = _DEVICE.unpack_from(raw, o)
        name, o = read_name(raw, o + _DEVICE.size)
        devices[name] = [None if none & 1 else newest, None if none & 2 else received]
    fence, o = read_fence(raw, o, n_fence)
    index: dict[str, Any] = {}
    if raw[:1] == INDEXED:
        index["stored_days"], o = unpack_days(raw, o)
        (index["has_legacy"],) = _FLAG.unpack_from(raw, o)
    return index | {
        "clock": {"marks": marks, "watermark": watermark, "floor": floor},
        "cursor": None if flags & 1 else cursor,
        "start_day": None if flags & 2 else start,
        "dirty_days": dirty,
        "hot_from": None if flags & 4 else hot,
        "devices": devices,
        "fence": fence,
    }
