"""One patient-day of event-time state: small, mergeable, stored as a day part and hour cells.

Holds hourly moments per metric (see :mod:`workers.features.moments`), a per-metric value
histogram for the robust z-score, the night's sleep stage seconds (for the night that
ENDS on this date, see :mod:`workers.features.patient`), symptom severity sums, quality
counters, the publication bookkeeping (``published`` count, ``dirty`` flag) and the
fingerprints of the event ids folded in, per stream and hour (deduplication).

Storage (:mod:`workers.features.parts`) splits a day into its *meta* (histograms, sleep,
symptoms, counters, bookkeeping) and one *cell* per hour (that hour's moments and
fingerprints), so a live event rewrites one small cell, not the day. ``changed_hours``
names the cells changed since the last write. A day read back from storage unpacks an
hour's cell when that hour is first used, and all of them when the whole day is read. The
meta is packed (:meth:`DayWindow.packed_meta`); version-3 state wrote it as JSON, which is
still read.

Deduplication keeps 32-bit BLAKE2b fingerprints per (stream, hour): 4 bytes per event.
A new event is taken for a duplicate only when its fingerprint equals one of the ``n``
others of its stream in the same hour: probability ``n / 2**32`` (1.4e-8 at 60 events an
hour, i.e. about one sample in 70 million per minute-level stream).
"""

from __future__ import annotations

import base64
import json
import struct
import sys
from array import array
from collections.abc import Callable
from hashlib import blake2b
from typing import Any, Protocol

from workers.features.moments import SLOT, Moments, daily, fold, hourly
from workers.validation.catalog import METRIC_INDEX, METRIC_NAMES, METRICS

# indices into DayWindow.q (quality / bookkeeping counters)
ACCEPTED = 0  # valid biometric samples folded in
BOUND_OUTLIERS = 1  # samples outside the typical range (kept, counted)
DUPLICATES = 2
UNIT_MISMATCH = 3
NON_MONOTONIC = 4  # sample older than the previous one of the same device stream
LATE_FOLDED = 5  # events folded in after the day had been published
REPORTS = 6  # symptom reports and assessments attributed to the day
N_COUNTERS = 7

SLEEP_INDEX = {"AWAKE": 0, "LIGHT": 1, "DEEP": 2, "REM": 3, "ASLEEP": 4}
HOURS = 24
FINGERPRINT = "I"  # array typecode of the 32-bit id fingerprints
assert array(FINGERPRINT).itemsize == 4


def fingerprint(event_id: str) -> int:
    """Unsigned 32-bit BLAKE2b fingerprint of an event id (the same in every process)."""
    return int.from_bytes(blake2b(event_id.encode(), digest_size=4).digest(), "little")


class DayWindow:
    """Event-time aggregates of one UTC day (``day`` = days since 1970-01-01)."""

    __slots__ = (
        "_cells",
        "_seen",
        "_series",
        "changed_hours",
        "day",
        "dirty",
        "hist",
        "published",
        "q",
        "sleep",
        "symptoms",
    )

    def __init__(self, day: int) -> None:
        self.day = day
        self._series: dict[str, array[float]] = {}
        self.hist: dict[str, array[int]] = {}
        self.sleep: array[float] | None = None
        self.symptoms: dict[str, list[int]] = {}
        self.q = [0] * N_COUNTERS
        self.published = 0
        self.dirty = False
        self._seen: dict[int, array[int]] = {}  # stream index * 24 + hour -> fingerprints
        self.changed_hours: set[int] = set()
        # stored hour cells not unpacked yet: a live event unpacks only the hour it lands in
        self._cells: HourCells | None = None

    @property
    def series(self) -> dict[str, array[float]]:
        """Metric -> hourly slots (see :mod:`workers.features.moments`), every hour unpacked."""
        if self._cells:
            self._open_all()
        return self._series

    @property
    def seen(self) -> dict[int, array[int]]:
        """Stream index * 24 + hour -> fingerprints, every hour unpacked."""
        if self._cells:
            self._open_all()
        return self._seen

    def _open(self, hour: int) -> None:
        assert self._cells is not None
        raw = self._cells.take(hour)
        if raw is not None:
            self._unpack_cell(hour, raw)

    def _open_all(self) -> None:
        assert self._cells is not None
        rest = self._cells.rest()
        self._cells = None
        for hour in sorted(rest):
            self._unpack_cell(hour, rest[hour])

    def admit(self, stream: int, hour: int, fp: int) -> bool:
        """Record an event id (its :func:`fingerprint`) of ``stream`` in ``hour``; False if it
        was folded in before."""
        if self._cells:
            self._open(hour)
        key = stream * HOURS + hour
        seen = self._seen.get(key)
        if seen is None:
            self._seen[key] = array(FINGERPRINT, (fp,))
        elif fp in seen:
            return False
        else:
            seen.append(fp)
        self.changed_hours.add(hour)
        return True

    def add_value(self, metric: str, hour: int, value: float, outlier: bool) -> None:
        """Fold a validated sample into its hourly slot and the quality histogram."""
        if self._cells:
            self._open(hour)
        series = self._series.get(metric)
        if series is None:
            series = self._series[metric] = array("d")
        fold(series, hour, value)
        self.changed_hours.add(hour)
        self.q[ACCEPTED] += 1
        if outlier:
            self.q[BOUND_OUTLIERS] += 1
            return
        spec = METRICS[metric].hist
        if spec is not None:
            lo, width, bins = spec
            hist = self.hist.get(metric)
            if hist is None:
                hist = self.hist[metric] = array("I", bytes(4 * bins))
            i = int((value - lo) / width)
            hist[i if i < bins else bins - 1] += 1

    def add_sleep(self, stage: str, seconds: float) -> None:
        if self.sleep is None:
            self.sleep = array("d", bytes(8 * len(SLEEP_INDEX)))
        self.sleep[SLEEP_INDEX[stage]] += seconds

    def add_symptom(self, symptom_type: str, severity: int) -> None:
        acc = self.symptoms.get(symptom_type)
        if acc is None:
            self.symptoms[symptom_type] = [1, severity]
        else:
            acc[0] += 1
            acc[1] += severity
        self.q[REPORTS] += 1

    def has_data(self) -> bool:
        """True if any accepted event is attributed to this day."""
        return bool(self.series or self.sleep is not None or self.q[REPORTS])

    def moments(self, metric: str) -> Moments | None:
        """Daily aggregate of a metric (merged hourly slots), None without samples."""
        return daily(self.series.get(metric))

    def hourly(self, metric: str) -> dict[int, Moments]:
        """Hour of day (UTC) -> aggregate of that hour."""
        return hourly(self.series.get(metric))

    def sleep_seconds(self) -> dict[str, float] | None:
        if self.sleep is None:
            return None
        return {stage: self.sleep[i] for stage, i in SLEEP_INDEX.items()}

    # ---- storage ----------------------------------------------------------------------
    def cell(self, hour: int) -> bytes | None:
        """One hour's moments and fingerprints, packed (little-endian): metric count, stream
        count; per metric its index and (n, mean, M2, min, max) as doubles; per stream its index,
        the fingerprint count and the fingerprints. None when the hour holds nothing."""
        if self._cells:
            self._open(hour)
        moments = []
        for metric, series in self._series.items():
            for o in range(len(series) - SLOT, -1, -SLOT):  # newest slots last: live data is there
                if series[o] == hour:
                    moments.append(_MOMENTS.pack(METRIC_INDEX[metric], *series[o + 1 : o + SLOT]))
                    break
        seen = [(k // HOURS, v) for k, v in self._seen.items() if k % HOURS == hour]
        if not moments and not seen:
            return None
        out = [_COUNTS.pack(len(moments), len(seen)), *moments]
        for stream, fingerprints in sorted(seen):
            out.append(_STREAM.pack(stream, len(fingerprints)))
            out.append(_le(fingerprints).tobytes())
        return b"".join(out)

    def hours(self) -> set[int]:
        """Hours that have a cell."""
        out = {k % HOURS for k in self._seen}
        if self._cells:
            out.update(self._cells.rest())
        for series in self._series.values():
            out.update(int(series[o]) for o in range(0, len(series), SLOT))
        return out

    def packed_meta(self) -> bytes:
        """Everything but the hour cells, packed (little-endian): the tag ``M``, flags (dirty,
        has sleep), the publication count and the counters; per histogram its metric index,
        first non-zero bin, width (2 or 4 bytes) and counts up to the last non-zero bin; the
        sleep stage seconds; per symptom type its name, count and severity sum."""
        sleep = self.sleep
        q = self.q
        flags = self.dirty | (sleep is not None) << 1
        out = [_META.pack(b"M", flags, self.published, len(q), len(self.hist))]
        out.append(_le(array("I", q)).tobytes())
        for metric, hist in self.hist.items():
            first, counts = _span(hist)
            raw = _le(counts).tobytes()
            narrow = _narrow(raw)
            out.append(_HIST.pack(METRIC_INDEX[metric], first, 4 if narrow is None else 2, len(counts)))
            out.append(raw if narrow is None else narrow)
        if sleep is not None:
            out.append(_le(sleep).tobytes())
        out.append(bytes((len(self.symptoms),)))
        for symptom, (count, severity) in self.symptoms.items():
            name = symptom.encode()
            out += [bytes((len(name),)), name, _SYMPTOM.pack(count, severity)]
        return b"".join(out)

    def _unpack_meta(self, raw: bytes) -> None:
        _tag, flags, self.published, n_counters, n_hist = _META.unpack_from(raw, 0)
        self.dirty = bool(flags & 1)
        o = _META.size
        self.q = list(struct.unpack_from(f"<{n_counters}I", raw, o))
        o += 4 * n_counters
        for _ in range(n_hist):
            index, first, width, count = _HIST.unpack_from(raw, o)
            o += _HIST.size
            counts = _from_le("H" if width == 2 else "I", raw[o : o + width * count])
            o += width * count
            metric = METRIC_NAMES[index]
            bins = METRICS[metric].hist
            assert bins is not None
            self.hist[metric] = _untrim([first, counts], bins[2])
        if flags & 2:
            self.sleep = _from_le("d", raw[o : o + 8 * len(SLEEP_INDEX)])
            o += 8 * len(SLEEP_INDEX)
        n_symptoms = raw[o]
        o += 1
        for _ in range(n_symptoms):
            size = raw[o]
            name = raw[o + 1 : o + 1 + size].decode()
            o += 1 + size
            self.symptoms[name] = list(_SYMPTOM.unpack_from(raw, o))
            o += _SYMPTOM.size

    @classmethod
    def from_parts(
        cls, day: int, meta: dict[str, Any] | bytes, cells: dict[int, bytes] | HourCells
    ) -> DayWindow:
        """Inverse of :meth:`packed_meta` (or of :meth:`meta`, as version 3 stored it) and
        :meth:`cell`: ``cells`` held (any order) or in a store (:class:`StoredCells`). An hour's
        cell is unpacked when that hour is first used; reading the whole day unpacks them all."""
        self = cls(day)
        if isinstance(meta, bytes):
            self._unpack_meta(meta)
        else:
            self._meta_from_dict(meta)
        if isinstance(cells, dict):
            if cells:
                self._cells = HeldCells(dict(cells))
        else:
            self._cells = cells
        return self

    def _meta_from_dict(self, meta: dict[str, Any]) -> None:
        for metric, trimmed in meta["hist"].items():
            bins = METRICS[metric].hist
            assert bins is not None
            self.hist[metric] = _untrim(trimmed, bins[2])
        self.sleep = None if meta["sleep"] is None else array("d", meta["sleep"])
        self.symptoms = {k: list(v) for k, v in meta["symptoms"].items()}
        self.q = list(meta["q"])
        self.published = meta["published"]
        self.dirty = meta["dirty"]

    def _unpack_cell(self, hour: int, raw: bytes) -> None:
        n_metrics, n_streams = _COUNTS.unpack_from(raw, 0)
        o = _COUNTS.size
        for _ in range(n_metrics):
            index, *slot = _MOMENTS.unpack_from(raw, o)
            o += _MOMENTS.size
            self._series.setdefault(METRIC_NAMES[index], array("d")).extend((hour, *slot))
        for _ in range(n_streams):
            stream, count = _STREAM.unpack_from(raw, o)
            o += _STREAM.size
            fingerprints = array(FINGERPRINT)
            fingerprints.frombytes(raw[o : o + 4 * count])
            o += 4 * count
            self._seen[stream * HOURS + hour] = _le(fingerprints)

    def whole(self) -> bytes:
        """The day as one record (a cold day): ``V``, the packed meta's length and the meta,
        then per hour its number, the cell's length and the cell. (Version 3 wrote ``W`` and
        the meta as JSON; :meth:`from_whole` reads both.)"""
        meta = self.packed_meta()
        out = [WHOLE, _LENGTH.pack(len(meta)), meta]
        for hour in sorted(self.hours()):
            cell = self.cell(hour)
            if cell is not None:
                out += [_HOUR.pack(hour, len(cell)), cell]
        return b"".join(out)

    @classmethod
    def from_whole(cls, day: int, raw: bytes) -> DayWindow:
        (length,) = _LENGTH.unpack_from(raw, 1)
        o = 1 + _LENGTH.size
        meta = raw[o : o + length]
        o += length
        cells: dict[int, bytes] = {}
        while o < len(raw):
            hour, size = _HOUR.unpack_from(raw, o)
            o += _HOUR.size
            cells[hour] = raw[o : o + size]
            o += size
        return cls.from_parts(day, json.loads(meta) if raw[:1] == WHOLE_V3 else meta, cells)

    def to_dict(self) -> dict[str, Any]:
        """The whole day as one JSON-serialisable dict (tests, views)."""
        return {"day": self.day, "whole": base64.b64encode(self.whole()).decode("ascii")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DayWindow:
        return cls.from_whole(data["day"], base64.b64decode(data["whole"]))


class HourCells(Protocol):
    """A stored day's packed hour cells that its window has not unpacked yet."""

    def take(self, hour: int) -> bytes | None:
        """The cell of ``hour`` (None: it has none), handed over once."""

    def rest(self) -> dict[int, bytes]:
        """The cells not taken yet."""

    def __bool__(self) -> bool:
        """False when none can be left."""


class HeldCells:
    """Cells in memory (a day stored whole)."""

    __slots__ = ("cells",)

    def __init__(self, cells: dict[int, bytes]) -> None:
        self.cells = cells

    def take(self, hour: int) -> bytes | None:
        return self.cells.pop(hour, None)

    def rest(self) -> dict[int, bytes]:
        return self.cells

    def __bool__(self) -> bool:
        return bool(self.cells)


class StoredCells:
    """Cells read from the store when asked for: one ``get`` for the hour a live event lands in,
    one ``scan`` for the rest of the day when the whole day is read."""

    __slots__ = ("get", "scan", "taken")

    def __init__(self, get: Callable[[int], bytes | None], scan: Callable[[], dict[int, bytes]]) -> None:
        self.get = get
        self.scan = scan
        self.taken: set[int] = set()

    def take(self, hour: int) -> bytes | None:
        if hour in self.taken:
            return None
        self.taken.add(hour)
        return self.get(hour)

    def rest(self) -> dict[int, bytes]:
        return {hour: raw for hour, raw in self.scan().items() if hour not in self.taken}

    def __bool__(self) -> bool:
        return True


WHOLE = b"V"  # a cold day stored whole, its meta packed
WHOLE_V3 = b"W"  # the same with a JSON meta (version 3)
_META = struct.Struct("<cBIBB")
_HIST = struct.Struct("<BHBH")
_SYMPTOM = struct.Struct("<qq")
_COUNTS = struct.Struct("<BB")
_MOMENTS = struct.Struct("<B5d")
_STREAM = struct.Struct("<BI")
_LENGTH = struct.Struct("<I")
_HOUR = struct.Struct("<BI")


def _le(values: array[Any]) -> array[Any]:
    """The array in little-endian byte order (as stored) on any machine; a no-op on most."""
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values


def _from_le(typecode: str, raw: bytes) -> array[Any]:
    values = array(typecode)
    values.frombytes(raw)
    return _le(values)  # swapping is its own inverse


def _narrow(raw: bytes) -> bytes | None:
    """Little-endian 32-bit counts as 16-bit ones, or None when one does not fit. (Byte slices
    rather than a conversion count by count: this runs for every live event.)"""
    if raw[2::4].strip(b"\0") or raw[3::4].strip(b"\0"):
        return None
    out = bytearray(len(raw) // 2)
    out[0::2] = raw[0::4]
    out[1::2] = raw[1::4]
    return bytes(out)


def _span(hist: array[int]) -> tuple[int, array[int]]:
    """The first non-zero bin and the counts up to the last non-zero one."""
    raw = hist.tobytes()
    size = hist.itemsize
    first = (len(raw) - len(raw.lstrip(b"\0"))) // size
    if first == len(hist):
        return 0, array(hist.typecode)
    last = (len(raw.rstrip(b"\0")) + size - 1) // size
    return first, hist[first:last]


def _untrim(trimmed: list[Any], bins: int) -> array[int]:
    start, counts = trimmed
    hist = array("I", bytes(4 * bins))
    hist[start : start + len(counts)] = array("I", counts)
    return hist
