"""Per-stream event-time watermarks of one patient: lateness and the fold floor.

A patient's events reach the workers on independently consumed logs, so one log can run
far ahead of another (a cohort's history published at once: the small reports topic is
read to its end while weeks of wearable samples are still backlogged). Lateness is
therefore judged per *stream*, one per source log:

* ``biometrics``: wearable samples (every device and metric of the patient);
* ``reports``: symptom reports and PHQ-9 / GAD-7 results (one log, one order).

A finer stream (per device or metric) would let a device that was offline for two months
backfill all of it, and a sparse stream (an assessment every two weeks) would hold every
day for weeks; a coarser one (per patient) dead-letters a backlogged log.

Rules (all in event time, ms):

* ``marks[s]`` = newest event time admitted on stream ``s``; ``watermark`` = the newest of
  all (it closes days: closing stays timely however quiet a stream is);
* an event of stream ``s`` is late when ``t < marks[s] - lateness_ms`` or ``t < floor``;
* ``floor`` (never decreases) = the oldest instant any stream can still fold into:
  ``max(min over the streams of marks[s] - lateness_ms, watermark - retention_ms)``.
  A stream not seen yet may still bring anything down to ``watermark - retention_ms``;
  the retention cap bounds memory when one stream is quiet or lags for long, and it is
  the largest lag between streams that is absorbed without dead letters.
"""

from __future__ import annotations

from typing import Any

DAY_MS = 86_400_000
NEVER = -(2**62)
BIOMETRICS = "biometrics"
REPORTS = "reports"
STREAMS = (BIOMETRICS, REPORTS)
STREAM_INDEX = {s: i for i, s in enumerate(STREAMS)}
STREAM_OF_RECORD = {
    "BiometricSample": BIOMETRICS,
    "SymptomReport": REPORTS,
    "AssessmentResult": REPORTS,
}


class StreamClock:
    """Watermarks per stream, the patient watermark and the fold floor (JSON via to_dict)."""

    __slots__ = ("floor", "lateness_ms", "marks", "retention_ms", "slowest", "watermark")

    def __init__(self, *, lateness_ms: int, retention_ms: int) -> None:
        if retention_ms < lateness_ms:
            raise ValueError(f"retention_ms {retention_ms} is shorter than lateness_ms {lateness_ms}")
        self.lateness_ms = lateness_ms
        self.retention_ms = retention_ms
        self.marks: dict[str, int] = {}
        self.watermark = NEVER
        self.floor = NEVER
        self.slowest = NEVER  # oldest mark over STREAMS (NEVER while one is unseen)

    def late_reason(self, stream: str, t: int) -> str | None:
        """Why an event at ``t`` on ``stream`` can no longer be folded in; None if it can."""
        mark = self.marks.get(stream)
        if mark is not None and t < mark - self.lateness_ms:
            return (
                f"{(mark - t) / DAY_MS:.2f} days behind the {stream} watermark "
                f"(lateness {self.lateness_ms / DAY_MS:g} days)"
            )
        if t < self.floor:
            return (
                f"{(self.watermark - t) / DAY_MS:.2f} days behind the patient's newest event: "
                f"before the oldest retained day (retention {self.retention_ms / DAY_MS:g} days)"
            )
        return None

    def observe(self, stream: str, t: int) -> bool:
        """Account an admitted event (after :meth:`late_reason` returned None).

        Returns True when the floor entered a later day (days may be evicted).
        """
        marks = self.marks
        old = marks.get(stream, NEVER)
        if t <= old:
            return False
        marks[stream] = t
        if t > self.watermark:
            self.watermark = t
        low = self.slowest
        if old == low:  # this stream held the slowest mark (or had none): find it again
            low = t
            for s in STREAMS:
                mark = marks.get(s, NEVER)
                if mark < low:
                    low = mark
            self.slowest = low
        floor = low - self.lateness_ms
        cap = self.watermark - self.retention_ms
        if cap > floor:
            floor = cap
        previous = self.floor
        if floor <= previous:
            return False
        self.floor = floor
        return floor // DAY_MS != previous // DAY_MS

    def to_dict(self) -> dict[str, Any]:
        return {"marks": dict(self.marks), "watermark": self.watermark, "floor": self.floor}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, lateness_ms: int, retention_ms: int) -> StreamClock:
        self = cls(lateness_ms=lateness_ms, retention_ms=retention_ms)
        self.marks = {str(k): int(v) for k, v in data["marks"].items()}
        self.watermark = int(data["watermark"])
        self.floor = int(data["floor"])
        self.slowest = min(self.marks.get(s, NEVER) for s in STREAMS)
        return self
