"""Per-patient event-time state: validate -> dedup -> fold -> close/revise -> features.

Time rules (all on EVENT time, UTC):

* watermark = max event time seen for the patient (any stream);
* an event older than ``watermark - lateness_ms`` (30 days) is a ``LateEvent``;
* day D closes when the watermark reaches ``end of D + grace_ms``; closing publishes its
  PatientDailyFeatures (revision 0; a day without data publishes ``missing=True``);
* an event folded into a closed day marks it (and the 6 following days, whose rolling
  features change) dirty; dirty days are re-published with ``revision + 1``;
* closing and revision flushes run when the watermark enters a new ``tick_ms`` slot
  (hourly), so output depends only on the event sequence, never on batching or clocks;
* a sleep segment belongs to the night dated by ``segment end + 6 h`` (sleep ending
  between 18:00 UTC the day before and 18:00 UTC on D counts for D), so an episode
  crossing midnight is not split. Dates are UTC: local time is converted upstream.

Published dicts are appended to an outbox that the caller empties with :meth:`drain`
(before persisting the state; the outbox is not serialised).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from workers.features.daily import NULL_FEATURES, Normalizer, base_features, rolling_7d
from workers.features.day import DUPLICATES, LATE_FOLDED, NON_MONOTONIC, UNIT_MISMATCH, DayWindow
from workers.quality.scoring import day_quality
from workers.validation.dedup import DedupWindow
from workers.validation.exceptions import Duplicate, LateEvent, UnitMismatch, ValidationError
from workers.validation.rules import (
    DEFAULT_CONFIG,
    Sample,
    ValidationConfig,
    to_millis,
    validate_assessment,
    validate_biometric,
    validate_symptom,
)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_EPOCH = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """Lateness, grace and tick in ms; ``rolling_days`` = 7."""

    lateness_ms: int = 30 * DAY_MS
    grace_ms: int = HOUR_MS
    tick_ms: int = HOUR_MS
    sleep_shift_ms: int = 6 * HOUR_MS
    rolling_days: int = 7
    dedup_horizon_ms: int = 31 * DAY_MS
    dedup_max_entries: int = 250_000
    source: str = "workers.features"
    validation: ValidationConfig = field(default=DEFAULT_CONFIG)


DEFAULT_WINDOWS = WindowConfig()


def day_date(day: int) -> date:
    return date.fromordinal(_EPOCH + day)


class PatientState:
    """All event-time state of one patient; a Faust table value via to_dict/from_dict."""

    __slots__ = (
        "_tick",
        "assessments",
        "config",
        "cursor",
        "days",
        "dedup",
        "norm",
        "outbox",
        "patient_id",
        "rejected",
        "seen",
        "start_day",
        "streams",
        "watermark",
    )

    def __init__(self, patient_id: str, config: WindowConfig = DEFAULT_WINDOWS) -> None:
        self.patient_id = patient_id
        self.config = config
        self.watermark = -(2**62)
        self._tick = self.watermark // config.tick_ms
        self.days: dict[int, DayWindow] = {}
        self.dedup = DedupWindow(horizon_ms=config.dedup_horizon_ms, max_entries=config.dedup_max_entries)
        self.streams: dict[str, int] = {}  # "device|metric" -> last event time
        self.assessments: dict[str, list[list[int]]] = {}  # instrument -> sorted [t, total]
        self.norm = Normalizer()
        self.cursor: int | None = None  # every day <= cursor is closed
        self.start_day: int | None = None
        self.seen: set[str] = set()  # metrics this patient has produced
        self.rejected: dict[str, int] = {}  # error_class -> count
        self.outbox: list[dict[str, Any]] = []

    # ---- ingestion -------------------------------------------------------------------
    def ingest(self, kind: str, event: Mapping[str, Any], now_ms: int) -> ValidationError | None:
        """Dispatch on the record name: BiometricSample, SymptomReport, AssessmentResult."""
        if kind == "BiometricSample":
            return self.ingest_biometric(event, now_ms)
        if kind == "SymptomReport":
            return self.ingest_symptom(event, now_ms)
        if kind == "AssessmentResult":
            return self.ingest_assessment(event, now_ms)
        raise ValueError(f"unsupported record {kind!r}")

    def ingest_biometric(self, event: Mapping[str, Any], now_ms: int) -> ValidationError | None:
        """Validate, dedup and fold one BiometricSample dict; None when folded in."""
        s = validate_biometric(event, now_ms, self.config.validation)
        if type(s) is not Sample:
            return self._reject(s, event)  # type: ignore[arg-type]
        t = s.t
        err = self._admit(s.event_id, t)
        if err is not None:
            return err
        day = t // DAY_MS
        window = self.days.get(day) or self._open_day(day)
        metric = s.metric
        window.add_value(metric, (t - day * DAY_MS) // HOUR_MS, s.value, s.outlier)
        key = f"{s.device_id}|{metric}"
        last = self.streams.get(key)
        if last is not None and t < last:
            window.q[NON_MONOTONIC] += 1
        else:
            self.streams[key] = t
        if metric not in self.seen:
            self.seen.add(metric)
            self._expected_changed()
        if s.stage is not None:
            assert s.duration_s is not None
            night = (t + int(s.duration_s * 1000) + self.config.sleep_shift_ms) // DAY_MS
            sleep_window = self.days.get(night) or self._open_day(night)
            sleep_window.add_sleep(s.stage, s.value)
            self._touch(sleep_window, late=True)
        if self.cursor is not None and day <= self.cursor:
            self._touch(window, late=True)
        if t > self.watermark:
            self._advance(t)
        return None

    def ingest_symptom(self, event: Mapping[str, Any], now_ms: int) -> ValidationError | None:
        """Validate, dedup and fold one SymptomReport dict."""
        s = validate_symptom(event, now_ms, self.config.validation)
        if isinstance(s, ValidationError):
            return self._reject(s, event)
        err = self._admit(s.event_id, s.t)
        if err is not None:
            return err
        day = s.t // DAY_MS
        window = self.days.get(day) or self._open_day(day)
        window.add_symptom(s.symptom_type, s.severity)
        self._touch(window, late=True)
        self._advance(s.t)
        return None

    def ingest_assessment(self, event: Mapping[str, Any], now_ms: int) -> ValidationError | None:
        """Validate, dedup and record one AssessmentResult dict (PHQ9 / GAD7)."""
        a = validate_assessment(event, now_ms, self.config.validation)
        if isinstance(a, ValidationError):
            return self._reject(a, event)
        err = self._admit(a.event_id, a.t)
        if err is not None:
            return err
        history = self.assessments.setdefault(a.instrument, [])
        entry = [a.t, a.total]
        i = bisect_left(history, entry)
        history.insert(i, entry)
        day = a.t // DAY_MS
        window = self.days.get(day) or self._open_day(day)
        window.q[6] += 1  # REPORTS
        self._touch(window, late=True)
        if i + 1 < len(history):  # the next assessment's change is now different
            nxt = self.days.get(history[i + 1][0] // DAY_MS)
            if nxt is not None:
                self._touch(nxt, late=False)
        self._advance(a.t)
        return None

    def drain(self) -> list[dict[str, Any]]:
        """Return and clear the PatientDailyFeatures dicts published so far."""
        out, self.outbox = self.outbox, []
        return out

    def flush_revisions(self) -> None:
        """Publish dirty closed days now (for timers; makes output timing-dependent)."""
        for day in sorted(self.days):
            w = self.days[day]
            if w.dirty and self.cursor is not None and day <= self.cursor:
                self._publish(day, w)

    # ---- internals -------------------------------------------------------------------
    def _reject(self, err: ValidationError, event: Mapping[str, Any]) -> ValidationError:
        cls = err.error_class
        self.rejected[cls] = self.rejected.get(cls, 0) + 1
        if type(err) is UnitMismatch:
            t = to_millis(event.get("event_time"))
            if type(t) is int and t >= self.watermark - self.config.lateness_ms:
                day = t // DAY_MS
                (self.days.get(day) or self._open_day(day)).q[UNIT_MISMATCH] += 1
        return err

    def _admit(self, event_id: str, t: int) -> ValidationError | None:
        if t < self.watermark - self.config.lateness_ms:
            self.rejected["LateEvent"] = self.rejected.get("LateEvent", 0) + 1
            behind = (self.watermark - t) / DAY_MS
            return LateEvent("event_time", f"{behind:.2f} days behind the patient watermark")
        if not self.dedup.add(event_id, t):
            self.rejected["Duplicate"] = self.rejected.get("Duplicate", 0) + 1
            window = self.days.get(t // DAY_MS)
            if window is not None:
                window.q[DUPLICATES] += 1
            return Duplicate("event_id", f"{event_id} already folded in")
        return None

    def _open_day(self, day: int) -> DayWindow:
        window = self.days[day] = DayWindow(day)
        if self.cursor is None:
            self.cursor = day - 1
            self.start_day = day
        elif day <= self.cursor:
            assert self.start_day is not None
            window.published = 1 if day >= self.start_day else 0  # published as missing
        return window

    def _expected_changed(self) -> None:
        """A first sample of a metric changes every day's completeness: republish them."""
        for window in self.days.values():
            if window.published:
                window.dirty = True

    def _touch(self, window: DayWindow, late: bool) -> None:
        """Mark a closed day (and the rolling days after it) for re-publication."""
        cursor = self.cursor
        if cursor is None or window.day > cursor:
            return
        if late:
            window.q[LATE_FOLDED] += 1
        # Mark the following days even when this one is already dirty: one of them may have
        # been published since, with this day's earlier values in its rolling features.
        window.dirty = True
        for d in range(window.day + 1, min(window.day + self.config.rolling_days, cursor + 1)):
            after = self.days.get(d)
            if after is not None and after.published:
                after.dirty = True

    def _advance(self, t: int) -> None:
        if t <= self.watermark:
            return
        self.watermark = t
        tick = t // self.config.tick_ms
        if tick == self._tick:
            return
        self._tick = tick
        cfg = self.config
        last = (t - cfg.grace_ms) // DAY_MS - 1
        assert self.cursor is not None
        self.flush_revisions()
        first = max(self.cursor + 1, (t - cfg.lateness_ms) // DAY_MS)
        for day in range(first, last + 1):
            self._publish(day, self.days.get(day))
        if last > self.cursor:
            self.cursor = last
        self._evict((t - cfg.lateness_ms) // DAY_MS - cfg.rolling_days)

    def _evict(self, oldest: int) -> None:
        for day in [d for d in self.days if d < oldest]:
            del self.days[day]
        for history in self.assessments.values():
            keep = bisect_left(history, [oldest * DAY_MS])
            if keep > 1:
                del history[: keep - 1]  # keep one older entry for the change

    def _assessment(self, instrument: str, day: int) -> tuple[int | None, int | None]:
        history = self.assessments.get(instrument)
        if not history:
            return None, None
        j = bisect_left(history, [(day + 1) * DAY_MS]) - 1
        if j < 0 or history[j][0] < day * DAY_MS:
            return None, None
        total = history[j][1]
        return total, (total - history[j - 1][1] if j > 0 else None)

    def _publish(self, day: int, window: DayWindow | None) -> None:
        features = self.features(day)
        self.outbox.append(features)
        if window is not None:
            window.published += 1
            window.dirty = False
        if features["revision"] == 0 and not features["missing"]:
            self.norm.update(features)

    def features(self, day: int) -> dict[str, Any]:
        """PatientDailyFeatures dict of ``day`` from the current state (no bookkeeping)."""
        window = self.days.get(day)
        revision = window.published if window is not None else 0
        base = base_features(window)
        out: dict[str, Any] = {
            "event_id": _feature_id(self.patient_id, day, revision),
            "patient_id": self.patient_id,
            "event_time": datetime.fromtimestamp((day + 1) * DAY_MS / 1000, UTC),
            "received_time": datetime.fromtimestamp(max(self.watermark, 0) / 1000, UTC),
            "source": self.config.source,
            "schema_version": 1,
            "date": day_date(day),
            "revision": revision,
            "missing": base is None,
        }
        out.update(day_quality(window, self.seen))
        out["late_events"] = window.q[LATE_FOLDED] if window is not None else 0
        if base is None:
            out.update(NULL_FEATURES)
            out.update(symptom_severity_by_type={}, rolling_7d={}, normalized={})
            out.update(phq9_total=None, phq9_change=None, gad7_total=None, gad7_change=None)
            return out
        base["phq9_total"], base["phq9_change"] = self._assessment("PHQ9", day)
        base["gad7_total"], base["gad7_change"] = self._assessment("GAD7", day)
        history = [base_features(self.days.get(d)) for d in range(day - self.config.rolling_days + 1, day)]
        out.update(base)
        out["rolling_7d"] = rolling_7d([*history, base])
        out["normalized"] = self.norm.zscores(base)
        return out

    # ---- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (the config is not included: pass it to from_dict)."""
        return {
            "patient_id": self.patient_id,
            "watermark": self.watermark,
            "cursor": self.cursor,
            "start_day": self.start_day,
            "days": [w.to_dict() for _, w in sorted(self.days.items())],
            "dedup": self.dedup.to_dict(),
            "streams": dict(self.streams),
            "assessments": {k: [list(e) for e in v] for k, v in self.assessments.items()},
            "norm": self.norm.to_dict(),
            "seen": sorted(self.seen),
            "rejected": dict(self.rejected),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: WindowConfig = DEFAULT_WINDOWS) -> PatientState:
        self = cls(data["patient_id"], config)
        self.watermark = data["watermark"]
        self._tick = self.watermark // config.tick_ms
        self.cursor = data["cursor"]
        self.start_day = data["start_day"]
        self.days = {w["day"]: DayWindow.from_dict(w) for w in data["days"]}
        self.dedup = DedupWindow.from_dict(data["dedup"])
        self.streams = dict(data["streams"])
        self.assessments = {k: [list(e) for e in v] for k, v in data["assessments"].items()}
        self.norm = Normalizer.from_dict(data["norm"])
        self.seen = set(data["seen"])
        self.rejected = dict(data["rejected"])
        return self


def _feature_id(patient_id: str, day: int, revision: int) -> str:
    """Deterministic event id of a publication (same in live and replay)."""
    raw = f"patient-daily-features|{patient_id}|{day}|{revision}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]
