"""Per-patient event-time state: validate -> dedup -> fold -> close/revise -> features.

Time rules (all on EVENT time, UTC; streams, marks and the floor are defined in
:mod:`workers.features.streams`):

* lateness is judged per stream (``biometrics``, ``reports``): an event older than its
  stream's watermark minus ``lateness_ms`` (30 days), or older than the fold floor, is a
  ``LateEvent``; each stream deduplicates its own ids over ``dedup_horizon_ms`` behind
  its own watermark, so a backlogged stream keeps exactly what it can still fold;
* the patient watermark is the newest event of any stream; day D closes when it reaches
  ``end of D + grace_ms``; closing publishes its PatientDailyFeatures (revision 0; a day
  without data publishes ``missing=True``). Closing follows the newest stream so that a
  quiet stream never holds a patient's days back; a lagging stream revises them;
* days are kept while any stream can still fold into them (plus ``rolling_days - 1``
  before, for the rolling features): days before ``floor - rolling_days`` are evicted, and
  ``retention_ms`` (90 days) behind the patient watermark is the hard cap;
* an event folded into a closed day marks it (and the 6 following days, whose rolling
  features and expected metrics change) dirty; dirty days are re-published with
  ``revision + 1``; a backfill older than the first closed day publishes missing markers
  for the days between, so every day from the first one on is published;
* closing and revision flushes run when the watermark enters a new ``tick_ms`` slot
  (hourly), so output depends only on the event sequence, never on batching or clocks;
* a sleep segment belongs to the night dated by ``segment end + 6 h`` (sleep ending
  between 18:00 UTC the day before and 18:00 UTC on D counts for D), so an episode
  crossing midnight is not split. Dates are UTC: local time is converted upstream.

Published dicts are appended to an outbox that the caller empties with :meth:`drain`
(before persisting the state; the outbox is not serialised).
"""

from __future__ import annotations

import base64
import hashlib
import json
from array import array
from bisect import bisect_left
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from schemas.assessments import instrument_spec
from workers.features.daily import NULL_FEATURES, Normalizer, base_features, rolling_7d
from workers.features.day import (
    DUPLICATES,
    LATE_FOLDED,
    NON_MONOTONIC,
    REPORTS,
    UNIT_MISMATCH,
    DayWindow,
    fingerprint,
)
from workers.features.journal import Journal
from workers.features.streams import BIOMETRICS, NEVER, STREAM_INDEX, STREAMS, StreamClock
from workers.features.streams import REPORTS as REPORT_STREAM
from workers.quality.scoring import day_quality
from workers.validation.dedup import DedupWindow
from workers.validation.dedup import fingerprint as legacy_fingerprint
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
STATE_VERSION = 3
PROFILE_FIELDS = ("assessments", "norm", "dedup", "rejected")  # stored apart, see PatientState.profile
_EPOCH = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """Lateness, retention cap, grace and tick in ms; ``rolling_days`` = 7.

    ``dedup_horizon_ms`` must cover ``lateness_ms`` (each stream's dedup window keeps the
    ids its stream can still fold); ``retention_ms`` must cover it too.
    """

    lateness_ms: int = 30 * DAY_MS
    retention_ms: int = 90 * DAY_MS
    grace_ms: int = HOUR_MS
    tick_ms: int = HOUR_MS
    sleep_shift_ms: int = 6 * HOUR_MS
    rolling_days: int = 7
    dedup_horizon_ms: int = 31 * DAY_MS
    dedup_max_entries: int = 250_000
    source: str = "workers.features"
    validation: ValidationConfig = field(default=DEFAULT_CONFIG)

    def __post_init__(self) -> None:
        if self.dedup_horizon_ms < self.lateness_ms:
            raise ValueError(f"dedup_horizon_ms {self.dedup_horizon_ms} < lateness_ms {self.lateness_ms}")
        if self.retention_ms < self.lateness_ms:
            raise ValueError(f"retention_ms {self.retention_ms} < lateness_ms {self.lateness_ms}")
        if self.lateness_ms < self.grace_ms + DAY_MS:
            raise ValueError(f"lateness_ms {self.lateness_ms} must exceed grace_ms + one day")


DEFAULT_WINDOWS = WindowConfig()


def day_date(day: int) -> date:
    return date.fromordinal(_EPOCH + day)


class DayMap(MutableMapping[int, DayWindow]):
    """A patient's days: those in memory, and those a ``load`` function can bring back.

    Without ``load`` every day lives in memory (replay, tests). A worker backed by a local
    store passes the days it knows exist and loads each on first use; :meth:`release`
    drops clean days from memory again.
    """

    __slots__ = ("_known", "_load", "_loaded")

    def __init__(self, known: Iterable[int] = (), load: Callable[[int], DayWindow] | None = None) -> None:
        self._loaded: dict[int, DayWindow] = {}
        self._known = set(known)
        self._load = load

    def __getitem__(self, day: int) -> DayWindow:
        window = self._loaded.get(day)
        if window is None:
            if day not in self._known or self._load is None:
                raise KeyError(day)
            window = self._loaded[day] = self._load(day)
        return window

    def get(self, day: int, default: Any = None) -> Any:
        window = self._loaded.get(day)
        if window is not None:
            return window
        return self[day] if day in self._known else default

    def peek(self, day: int) -> DayWindow | None:
        """The day for reading only: the one in memory, else a load that is not kept (a day's
        features read the week before it; a day not in memory is stored as it is)."""
        window = self._loaded.get(day)
        if window is not None or day not in self._known or self._load is None:
            return window
        return self._load(day)

    def __setitem__(self, day: int, window: DayWindow) -> None:
        self._loaded[day] = window
        self._known.add(day)

    def __delitem__(self, day: int) -> None:
        self._known.remove(day)
        self._loaded.pop(day, None)

    def __contains__(self, day: object) -> bool:
        return day in self._known

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._known))

    def __len__(self) -> int:
        return len(self._known)

    def resident(self) -> int:
        return len(self._loaded)

    def release(self, before: float, keep: Container[int] = frozenset()) -> None:
        """Forget the loaded days before ``before`` that are not in ``keep`` (they must be
        stored already)."""
        if self._load is None:
            return
        for day in [d for d in self._loaded if d < before and d not in keep]:
            del self._loaded[day]


class PatientState:
    """All event-time state of one patient (stored as parts, see :mod:`workers.features.parts`).

    ``dedup`` serves the records the caller folds outside the windows (EHR context); the
    windowed streams deduplicate inside their day windows (per stream and hour). The
    ``changed_days``/``deleted_*`` sets and ``profile_changed`` say which parts a write must
    carry; :func:`workers.features.parts.take_changes` empties them.
    """

    __slots__ = (
        "_stored_profile",
        "_tick",
        "assessments",
        "changed_days",
        "clock",
        "config",
        "cursor",
        "days",
        "dedup",
        "deleted_days",
        "deleted_legacy",
        "devices",
        "dirty_days",
        "hot_from",
        "journal",
        "legacy",
        "norm",
        "outbox",
        "patient_id",
        "profile_changed",
        "rejected",
        "start_day",
    )

    def __init__(self, patient_id: str, config: WindowConfig = DEFAULT_WINDOWS) -> None:
        self.patient_id = patient_id
        self.config = config
        self.clock = StreamClock(lateness_ms=config.lateness_ms, retention_ms=config.retention_ms)
        self._tick = self.clock.watermark // config.tick_ms
        self.days = DayMap()
        self.dedup = DedupWindow(horizon_ms=config.dedup_horizon_ms, max_entries=config.dedup_max_entries)
        # "device|metric" -> [newest event time, received_time] of its latest delivery
        self.devices: dict[str, list[int | None]] = {}
        self.assessments: dict[str, list[list[int]]] = {}  # instrument -> sorted [t, total]
        self.norm = Normalizer()
        self.cursor: int | None = None  # every day <= cursor is closed
        self.start_day: int | None = None  # first published day
        self.rejected: dict[str, int] = {}  # error_class -> count
        self.outbox: list[dict[str, Any]] = []
        self.dirty_days: set[int] = set()  # closed days waiting to be re-published
        # "stream/day" -> 64-bit fingerprints carried over from a version-2 state
        self.legacy: dict[str, array[int]] = {}
        self.changed_days: set[int] = set()
        self.deleted_days: set[int] = set()
        self.deleted_legacy: set[str] = set()
        self.profile_changed = False
        self.hot_from: int | None = None  # days from here on are stored as hour cells
        self.journal = Journal()  # samples folded since the parts were last written
        self._stored_profile: bytes | None = None  # see :meth:`defer_profile`

    @property
    def watermark(self) -> int:
        """Newest event time of any stream (closes days)."""
        return self.clock.watermark

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
            self.journal.stop()
            return self._reject(s, event)  # type: ignore[arg-type]
        fp = fingerprint(s.event_id)
        err = self._admit(BIOMETRICS, s.event_id, s.t, fp)
        if err is not None:
            self.journal.stop()
            return err
        if self._fold_sample(s) and self._legacy_for(BIOMETRICS, s.t) is None:
            self.journal.add(s, fp)
        else:
            self.journal.stop()
        return None

    def refold(self, sample: Sample, fp: int) -> None:
        """Fold a journaled sample again (loading: see :mod:`workers.features.journal`)."""
        if self._admit(BIOMETRICS, None, sample.t, fp) is not None or not self._fold_sample(sample):
            raise ValueError("a journaled sample did not fold again as it first did")
        self.journal.add(sample, fp)

    def _fold_sample(self, s: Sample) -> bool:
        """Fold an admitted sample; True when it changed nothing but its day's window, the
        clock and its device stream (no sleep stage, closed day, closing or eviction)."""
        t = s.t
        day = t // DAY_MS
        window = self.days.get(day) or self._open_day(day)
        metric = s.metric
        window.add_value(metric, (t - day * DAY_MS) // HOUR_MS, s.value, s.outlier)
        # Monotonic time is judged the way a device sends its data: within one delivery
        # (received_time) of a device stream. A later delivery of older samples (a
        # backfill) is normal. Without received_time, arrival order is judged.
        key = f"{s.device_id}|{metric}"
        last = self.devices.get(key)
        if last is None or last[1] != s.received:
            self.devices[key] = [t, s.received]
        elif t < last[0]:  # type: ignore[operator]
            window.q[NON_MONOTONIC] += 1
        else:
            last[0] = t
        stage = s.stage
        quiet = stage is None
        if stage is not None:
            assert s.duration_s is not None
            night = (t + int(s.duration_s * 1000) + self.config.sleep_shift_ms) // DAY_MS
            sleep_window = self.days.get(night) or self._open_day(night)
            sleep_window.add_sleep(stage, s.value)
            self.changed_days.add(night)
            self._touch(sleep_window, late=True)
        if self.cursor is not None and day <= self.cursor:
            self._touch(window, late=True)
            quiet = False
        return self._advance(BIOMETRICS, t) and quiet

    def ingest_symptom(self, event: Mapping[str, Any], now_ms: int) -> ValidationError | None:
        """Validate, dedup and fold one SymptomReport dict."""
        self.journal.stop()  # only biometric samples are journaled
        s = validate_symptom(event, now_ms, self.config.validation)
        if isinstance(s, ValidationError):
            return self._reject(s, event)
        err = self._admit(REPORT_STREAM, s.event_id, s.t, fingerprint(s.event_id))
        if err is not None:
            return err
        day = s.t // DAY_MS
        window = self.days.get(day) or self._open_day(day)
        window.add_symptom(s.symptom_type, s.severity)
        self._touch(window, late=True)
        self._advance(REPORT_STREAM, s.t)
        return None

    def ingest_assessment(self, event: Mapping[str, Any], now_ms: int) -> ValidationError | None:
        """Validate, dedup and record one AssessmentResult dict (PHQ9 / GAD7 totals). A PHQ9_ITEM9
        screen counts as the day's report but is no questionnaire total: no feature reads it."""
        self.journal.stop()
        a = validate_assessment(event, now_ms, self.config.validation)
        if isinstance(a, ValidationError):
            return self._reject(a, event)
        err = self._admit(REPORT_STREAM, a.event_id, a.t, fingerprint(a.event_id))
        if err is not None:
            return err
        day = a.t // DAY_MS
        window = self.days.get(day) or self._open_day(day)
        window.q[REPORTS] += 1
        self._touch(window, late=True)
        if instrument_spec(a.instrument).banded:
            history = self.assessments.setdefault(a.instrument, [])
            entry = [a.t, a.total]
            i = bisect_left(history, entry)
            history.insert(i, entry)
            self.profile_changed = True
            if i + 1 < len(history):  # the next assessment's change is now different
                nxt = self.days.get(history[i + 1][0] // DAY_MS)
                if nxt is not None:
                    self._touch(nxt, late=False)
        self._advance(REPORT_STREAM, a.t)
        return None

    def drain(self) -> list[dict[str, Any]]:
        """Return and clear the PatientDailyFeatures dicts published so far."""
        out, self.outbox = self.outbox, []
        return out

    def flush_revisions(self) -> None:
        """Publish dirty closed days now (the caller does so at the end of each batch)."""
        cursor = self.cursor
        if cursor is None or not self.dirty_days:
            return
        for day in sorted(d for d in self.dirty_days if d <= cursor):
            self._publish(day, self.days[day])

    # ---- internals -------------------------------------------------------------------
    def _reject(self, err: ValidationError, event: Mapping[str, Any]) -> ValidationError:
        cls = err.error_class
        self.rejected[cls] = self.rejected.get(cls, 0) + 1
        self.profile_changed = True
        if type(err) is UnitMismatch:
            t = to_millis(event.get("event_time"))
            if type(t) is int and self.clock.late_reason(BIOMETRICS, t) is None:
                day = t // DAY_MS
                (self.days.get(day) or self._open_day(day)).q[UNIT_MISMATCH] += 1
                self.changed_days.add(day)
        return err

    def _admit(self, stream: str, event_id: str | None, t: int, fp: int) -> ValidationError | None:
        """Admit an event of ``stream`` (its id's fingerprint ``fp``) unless it is late or was
        folded in before. ``event_id`` is needed only where a version-2 state left fingerprints
        of its own (see :meth:`_legacy_for`)."""
        clock = self.clock
        if t < clock.floor or t < clock.marks.get(stream, NEVER) - clock.lateness_ms:
            reason = clock.late_reason(stream, t)
            assert reason is not None
            self.rejected["LateEvent"] = self.rejected.get("LateEvent", 0) + 1
            self.profile_changed = True
            return LateEvent("event_time", reason)
        day = t // DAY_MS
        window = self.days.get(day) or self._open_day(day)
        legacy = self._legacy_for(stream, t)
        if not window.admit(STREAM_INDEX[stream], (t - day * DAY_MS) // HOUR_MS, fp) or (
            legacy is not None and _legacy_seen(legacy, event_id)  # type: ignore[arg-type]
        ):
            self.rejected["Duplicate"] = self.rejected.get("Duplicate", 0) + 1
            self.profile_changed = True
            window.q[DUPLICATES] += 1
            self.changed_days.add(day)
            return Duplicate("event_id", f"{event_id} already folded in")
        self.changed_days.add(day)
        return None

    def _legacy_for(self, stream: str, t: int) -> array[int] | None:
        """Fingerprints a version-2 state kept for ``stream`` on the day of ``t``, if any."""
        return self.legacy.get(f"{stream}/{t // DAY_MS}") if self.legacy else None

    def _open_day(self, day: int) -> DayWindow:
        window = self.days[day] = DayWindow(day)
        self.changed_days.add(day)
        if self.cursor is None:
            self.cursor = day - 1
            self.start_day = day
        elif day <= self.cursor:
            assert self.start_day is not None
            if day >= self.start_day:
                window.published = 1  # published as missing when it closed
            else:  # a backfill before the first day: the days between were never published
                for gap in range(day + 1, self.start_day):
                    self._publish(gap, None)
                self.start_day = day
        return window

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
        self.dirty_days.add(window.day)
        self.changed_days.add(window.day)
        for d in range(window.day + 1, min(window.day + self.config.rolling_days, cursor + 1)):
            if d in self.days:
                after = self.days[d]
                if after.published and not after.dirty:
                    after.dirty = True
                    self.dirty_days.add(d)
                    self.changed_days.add(d)

    def _advance(self, stream: str, t: int) -> bool:
        """Move the clock on; True when no days closed and none were evicted."""
        clock = self.clock
        watermark = clock.watermark
        evict = clock.observe(stream, t)
        quiet = True
        if clock.watermark > watermark:
            tick = clock.watermark // self.config.tick_ms
            if tick != self._tick:
                self._tick = tick
                self._close(clock.watermark)
                quiet = False
        if evict:
            self._evict(clock.floor // DAY_MS - self.config.rolling_days)
            quiet = False
        return quiet

    def _close(self, watermark: int) -> None:
        """Flush revisions, then close every day the watermark has passed (plus grace)."""
        cursor = self.cursor
        assert cursor is not None
        self.flush_revisions()
        last = (watermark - self.config.grace_ms) // DAY_MS - 1
        first = max(cursor + 1, self.clock.floor // DAY_MS)
        # days no stream can fold into any more: only those with data are published
        for day in sorted(d for d in self.days if cursor < d < first):
            self._publish(day, self.days[day])
        for day in range(first, last + 1):
            self._publish(day, self.days.get(day))
        if last > cursor:
            self.cursor = last

    def _evict(self, oldest: int) -> None:
        """Drop days before ``oldest``, publishing pending revisions first.

        A dirty day is final once every stream is past it, but its revision reads the days
        before it (rolling features): it is published before any of them is dropped.
        """
        gone = [d for d in self.days if d < oldest]
        if gone:
            self.flush_revisions()
            for day in gone:
                del self.days[day]
                self.dirty_days.discard(day)
                self.changed_days.discard(day)
                self.deleted_days.add(day)
            if self.legacy:
                for key in [k for k in self.legacy if int(k.rsplit("/", 1)[1]) < oldest]:
                    del self.legacy[key]
                    self.deleted_legacy.add(key)
        for history in self.assessments.values():
            keep = bisect_left(history, [oldest * DAY_MS])
            if keep > 1:
                del history[: keep - 1]  # keep one older entry for the change
                self.profile_changed = True

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
            self.dirty_days.discard(day)
            self.changed_days.add(day)
        if features["revision"] == 0 and not features["missing"]:
            self.norm.update(features)
            self.profile_changed = True

    def expected_metrics(self, day: int, week: list[DayWindow | None] | None = None) -> set[str]:
        """Metrics the patient's devices produced in the rolling window ending on ``day``
        (``week``: its windows, when the caller has read them).

        A device gap keeps them expected (and lowers completeness) for ``rolling_days``;
        a device given up stops being expected after that.
        """
        out: set[str] = set()
        for window in self._week(day) if week is None else week:
            if window is not None:
                out.update(window.series)
        return out

    def _week(self, day: int) -> list[DayWindow | None]:
        """The windows of the rolling window ending on ``day``, oldest first; the days before
        ``day`` are read without being kept in memory."""
        before = [self.days.peek(d) for d in range(day - self.config.rolling_days + 1, day)]
        return [*before, self.days.get(day)]

    def features(self, day: int) -> dict[str, Any]:
        """PatientDailyFeatures dict of ``day`` from the current state (no bookkeeping)."""
        week = self._week(day)
        window = week[-1]
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
        out.update(day_quality(window, self.expected_metrics(day, week)))
        out["late_events"] = window.q[LATE_FOLDED] if window is not None else 0
        if base is None:
            out.update(NULL_FEATURES)
            out.update(symptom_severity_by_type={}, rolling_7d={}, normalized={})
            out.update(phq9_total=None, phq9_change=None, gad7_total=None, gad7_change=None)
            return out
        base["phq9_total"], base["phq9_change"] = self._assessment("PHQ9", day)
        base["gad7_total"], base["gad7_change"] = self._assessment("GAD7", day)
        history = [base_features(w) for w in week[:-1]]
        out.update(base)
        out["rolling_7d"] = rolling_7d([*history, base])
        out["normalized"] = self.norm.zscores(base)
        return out

    # ---- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The whole state as one JSON-serialisable dict (tests and views; the worker stores
        parts). The config is not included: pass it to :meth:`from_dict`."""
        return {
            "version": STATE_VERSION,
            "patient_id": self.patient_id,
            **self.head(),
            **self.profile(),
            "devices": {k: list(v) for k, v in self.devices.items()},
            "days": [self.days[d].to_dict() for d in self.days],
            "legacy": {k: encode_legacy(v) for k, v in sorted(self.legacy.items())},
        }

    def head(self) -> dict[str, Any]:
        """What changes with every event: clock, closing cursor, days awaiting revision."""
        return {
            "clock": self.clock.to_dict(),
            "cursor": self.cursor,
            "start_day": self.start_day,
            "dirty_days": sorted(self.dirty_days),
            "hot_from": self.hot_from,
        }

    def profile(self) -> dict[str, Any]:
        """What changes now and then: assessments, normaliser, context dedup, reject counts."""
        return {
            "assessments": {k: [list(e) for e in v] for k, v in self.assessments.items()},
            "norm": self.norm.to_dict(),
            "dedup": self.dedup.to_dict(),
            "rejected": dict(self.rejected),
        }

    def restore_head(self, head: dict[str, Any]) -> None:
        config = self.config
        self.clock = StreamClock.from_dict(
            head["clock"], lateness_ms=config.lateness_ms, retention_ms=config.retention_ms
        )
        self._tick = self.clock.watermark // config.tick_ms
        self.cursor = head["cursor"]
        self.start_day = head["start_day"]
        self.dirty_days = set(head["dirty_days"])
        self.hot_from = head.get("hot_from")

    def restore_profile(self, profile: dict[str, Any]) -> None:
        self.assessments = {k: [list(e) for e in v] for k, v in profile["assessments"].items()}
        self.norm = Normalizer.from_dict(profile["norm"])
        self.dedup = DedupWindow.from_dict(profile["dedup"])
        self.rejected = dict(profile["rejected"])

    def defer_profile(self, stored: bytes) -> None:
        """Leave the stored profile (JSON, see :meth:`profile`) unread until one of its fields
        is first used: a patient loaded for a live sample needs none of them."""
        for name in PROFILE_FIELDS:
            delattr(self, name)
        self._stored_profile = stored

    if not TYPE_CHECKING:  # hidden from mypy, which would let any attribute name through

        def __getattr__(self, name: str) -> Any:
            """Only for a profile field left unread by :meth:`defer_profile`: read it now."""
            stored = self._stored_profile
            if stored is None or name not in PROFILE_FIELDS:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            self.restore_profile(json.loads(stored))
            self._stored_profile = None
            return getattr(self, name)

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: WindowConfig = DEFAULT_WINDOWS) -> PatientState:
        """Inverse of :meth:`to_dict`; also reads version-2 states (see :func:`from_v2`)."""
        version = data.get("version", 1)
        if version == 1:
            return from_v2(_v1_as_v2(data, config), config)
        if version == 2:
            return from_v2(data, config)
        if version != STATE_VERSION:
            raise ValueError(f"unknown PatientState version {version!r}")
        self = cls(data["patient_id"], config)
        self.restore_head(data)
        self.restore_profile(data)
        self.devices = {k: list(v) for k, v in data["devices"].items()}
        for w in data["days"]:
            self.days[w["day"]] = DayWindow.from_dict(w)
        self.legacy = {k: decode_legacy(v) for k, v in data["legacy"].items()}
        return self


def from_v2(data: dict[str, Any], config: WindowConfig = DEFAULT_WINDOWS) -> PatientState:
    """A version-2 state (one JSON record per patient, 64-bit dedup per stream and day).

    Aggregates, clock and bookkeeping carry over unchanged; the old fingerprints stay
    readable as ``legacy`` buckets until their days are evicted, so events folded in before
    the upgrade are still recognised as duplicates.
    """
    self = PatientState(data["patient_id"], config)
    self.restore_head({**data, "dirty_days": [w["day"] for w in data["days"] if w["dirty"]]})
    self.restore_profile(data)
    self.devices = {k: list(v) for k, v in data["devices"].items()}
    for w in data["days"]:
        window = DayWindow.from_parts(w["day"], {**w, "hist": {}}, {})
        window.hist = {m: array("I", h) for m, h in w["hist"].items()}
        for metric, series in w["series"].items():
            window.series[metric] = array("d", series)
        self.days[w["day"]] = window
    for stream, dedup in data["stream_dedup"].items():
        for day, encoded in dedup["buckets"].items():
            if int(day) in self.days:
                self.legacy[f"{stream}/{day}"] = decode_legacy(encoded)
    return self


def _v1_as_v2(data: dict[str, Any], config: WindowConfig) -> dict[str, Any]:
    """Version 1 had one watermark and one dedup window: every stream starts at it."""
    wm = data["watermark"]
    fresh = DedupWindow(horizon_ms=config.dedup_horizon_ms).to_dict()
    return {
        **data,
        "clock": {"marks": dict.fromkeys(STREAMS, wm), "watermark": wm, "floor": wm - config.lateness_ms},
        "dedup": fresh,
        "stream_dedup": {BIOMETRICS: data["dedup"]},
        "devices": {},
    }


def _legacy_seen(fingerprints: array[int], event_id: str) -> bool:
    fp = legacy_fingerprint(event_id)
    i = bisect_left(fingerprints, fp)
    return i < len(fingerprints) and fingerprints[i] == fp


def encode_legacy(fingerprints: array[int]) -> str:
    return base64.b64encode(array("q", sorted(fingerprints)).tobytes()).decode("ascii")


def decode_legacy(encoded: str) -> array[int]:
    out = array("q")
    out.frombytes(base64.b64decode(encoded))
    return array("q", sorted(out))


def _feature_id(patient_id: str, day: int, revision: int) -> str:
    """Deterministic event id of a publication (same in live and replay)."""
    raw = f"patient-daily-features|{patient_id}|{day}|{revision}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]
