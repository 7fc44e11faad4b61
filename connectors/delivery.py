"""Produce mapped records to their topics and account for each one: the connectors' send loop.

A connector turns vendor input into ``(pseudonym, record type, record)`` tuples
(:data:`MappedRecord`). :class:`Delivery` encodes each with the contract codec, routes it to
its registry topic keyed by the pseudonym, and counts what Kafka acknowledged; :func:`deliver`
drives the loop with progress and a stop flag (SIGTERM, SIGINT) and always ends with a flush,
so the :class:`ImportSummary` states exactly what is safe on the broker.

Backpressure comes from ``EventProducer.send``, which blocks while the producer's bounded local
queue (``kafka.max_in_flight_messages``) is full.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from novamind.platform import metrics
from schemas.exceptions import EncodeError
from schemas.topics import TopicName, check_carries, record_routes

MappedRecord = tuple[str, str, dict[str, Any]]  # (patient pseudonym, record type, record)

# Each contract record's topic, derived from the registry. The intake and the simulator send
# assessments to patient-reports; the EHR connector keeps them on its own topic, which it alone
# writes.
SOURCE_ROUTES = record_routes(
    TopicName.WEARABLE_BIOMETRICS, TopicName.PATIENT_REPORTS, TopicName.EHR_CLINICAL_EVENTS
)
EHR_ROUTES = record_routes(
    TopicName.EHR_CLINICAL_EVENTS, TopicName.WEARABLE_BIOMETRICS, TopicName.PATIENT_REPORTS
)
WEARABLE_ROUTES = record_routes(TopicName.WEARABLE_BIOMETRICS)
LISTED_REJECTIONS = 100  # the summary lists this many rejections; the count covers all


class Producer(Protocol):
    """What a delivery needs of ``novamind.platform.producer.EventProducer``."""

    def send(
        self, topic: str, *, key: bytes, value: bytes, on_delivery: Callable[[Any, Any], None] | None = None
    ) -> None: ...

    def flush(self, timeout: float = 60.0) -> int: ...


class Encoder(Protocol):
    def encode_dict(self, record_name: str, record: dict[str, Any], *, topic: str | None = None) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input item that produced nothing: its id (if it has one), where it is, and why."""

    id: str | None
    path: str
    reason: str

    def line(self) -> str:
        return f"rejected {self.id or '-'} at {self.path}: {self.reason}"

    def as_dict(self) -> dict[str, str | None]:
        return {"id": self.id, "path": self.path, "reason": self.reason}


@dataclass
class ImportSummary:
    """One run: what was read, mapped, sent and acknowledged (per registry topic), and refused.

    ``read`` counts input items (FHIR resources, Fitbit payloads, Apple Health records, Open
    mHealth data points); ``records`` the contract records built from them. For FHIR, where
    several resources go into one record (panels and their items), ``mapped`` counts the
    resources that went into records, ``parked`` those waiting for their Patient and
    ``unparked`` those parked earlier and applied now, so that
    ``read + unparked == mapped + skipped + rejected + parked``; ``identities`` counts
    Patients by what their pseudonym was made of (``mrn``, ``identifier``, ``logical-id``).
    """

    read: int = 0
    records: int = 0
    mapped: int | None = None
    parked: int = 0
    unparked: int = 0
    identities: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: list[Rejected] = field(default_factory=list)
    sent: Counter[str] = field(default_factory=Counter)
    acknowledged: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    patients: int = 0
    unacknowledged: int = 0
    interrupted: str | None = None
    seconds: float = 0.0
    on_reject: Callable[[Rejected], None] | None = field(default=None, repr=False, compare=False)

    def reject(self, item: Rejected) -> None:
        self.rejected.append(item)
        if self.on_reject is not None:
            self.on_reject(item)

    @property
    def complete(self) -> bool:
        """Every record sent was acknowledged and the run was not interrupted."""
        return self.unacknowledged == 0 and not self.failed and self.interrupted is None

    def as_dict(self, *, listed: int = LISTED_REJECTIONS) -> dict[str, Any]:
        out: dict[str, Any] = {
            "read": self.read,
            "records": self.records,
            "produced": dict(self.acknowledged),
            "skipped": dict(self.skipped),
            "rejected": len(self.rejected),
            "rejections": [r.as_dict() for r in self.rejected[:listed]],
            "unacknowledged": self.unacknowledged,
            "failed": dict(self.failed),
            "patients": self.patients,
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 2),
        }
        if self.mapped is not None:  # FHIR: read + unparked == mapped + skipped + rejected + parked
            out |= {
                "mapped": self.mapped,
                "parked": self.parked,
                "unparked": self.unparked,
                "identities": dict(self.identities),
            }
        return out


class Delivery:
    """Encode, route and send records; count acknowledgements per registry topic.

    ``topic_name`` maps a registry name to the cluster's (topic prefix); ``on_patient`` runs
    before a patient's first record is sent (the extraction audit) and may raise to stop.
    """

    def __init__(
        self,
        *,
        producer: Producer,
        codec: Encoder,
        topic_name: Callable[[str], str] = str,
        routes: Mapping[str, str] = SOURCE_ROUTES,
        summary: ImportSummary | None = None,
        on_patient: Callable[[str], None] | None = None,
        connector: str = "simulator",
    ) -> None:
        self.connector = connector  # the ``connector`` label of its Prometheus counters
        self.producer = producer
        self.codec = codec
        self.topic_name = topic_name
        for record_type, topic in routes.items():
            check_carries(topic, record_type)  # a route the registry does not declare fails here
        self.routes = routes
        self.summary = summary if summary is not None else ImportSummary()
        self.on_patient = on_patient
        self.encode_errors: Counter[str] = Counter()
        self._patients: set[str] = set()
        self._reports: dict[str, Callable[[Any, Any], None]] = {}

    def send(self, patient_id: str, record_type: str, record: dict[str, Any]) -> bool:
        """Send one record keyed by ``patient_id``; False (and a rejection) when it cannot be."""
        topic = self.routes.get(record_type)
        if topic is None:
            reason = f"no topic carries {record_type} records from this connector"
            self.summary.reject(Rejected(record.get("event_id"), record_type, reason))
            metrics.record_connector(self.connector, metrics.ConnectorOutcome.INVALID)
            return False
        try:
            value = self.codec.encode_dict(record_type, record, topic=self.topic_name(topic))
        except EncodeError as exc:  # a record the contract cannot carry (a registry failure is raised)
            self.encode_errors[type(exc).__name__] += 1
            self.summary.reject(Rejected(record.get("event_id"), record_type, str(exc)))
            metrics.record_connector(self.connector, metrics.ConnectorOutcome.INVALID)
            return False
        if patient_id not in self._patients:
            if self.on_patient is not None:
                self.on_patient(patient_id)
            self._patients.add(patient_id)
            self.summary.patients += 1
        self.send_bytes(topic, patient_id.encode(), value)
        return True

    def send_bytes(self, topic: str, key: bytes, value: bytes) -> None:
        """Send already-encoded bytes to a registry topic (counted like any record)."""
        report = self._reports.get(topic) or self._reports.setdefault(topic, self._reporter(topic))
        self.producer.send(self.topic_name(topic), key=key, value=value, on_delivery=report)
        self.summary.sent[topic] += 1

    def _reporter(self, topic: str) -> Callable[[Any, Any], None]:
        acknowledged, failed = self.summary.acknowledged, self.summary.failed
        produced = metrics.CONNECTOR_RECORDS.labels(connector=self.connector, outcome="produced")
        refused = metrics.CONNECTOR_RECORDS.labels(connector=self.connector, outcome="failed")

        def report(err: Any, _msg: Any) -> None:
            if err is None:
                acknowledged[topic] += 1
                produced.inc()
            else:
                failed[err.name()] += 1
                refused.inc()

        return report

    def finish(self, timeout: float = 60.0) -> ImportSummary:
        """Flush; whatever Kafka has not acknowledged by then is counted as unacknowledged."""
        self.producer.flush(timeout)
        s = self.summary
        s.unacknowledged = sum(s.sent.values()) - sum(s.acknowledged.values())
        return s


class StopFlag:
    """Set by SIGTERM or SIGINT while :meth:`installed`: the loop stops reading, then flushes.

    A second SIGINT while stopping raises ``KeyboardInterrupt`` (gives up waiting).
    """

    def __init__(self) -> None:
        self.signal: str | None = None
        self.signum = 0

    @contextmanager
    def installed(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[StopFlag]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # handlers can only be set in the main thread
            return

        def handle(signum: int, _frame: Any) -> None:
            if self.signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.signal, self.signum = signal.Signals(signum).name, signum

        previous = {s: signal.signal(s, handle) for s in signals}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


class Progress:
    """A throttled progress line on stderr: rewritten in place on a terminal, else one line
    every ``interval`` seconds (10 by default) so captured logs show it too."""

    def __init__(
        self,
        label: str,
        summary: ImportSummary,
        *,
        stream: TextIO | None = None,
        interval: float | None = None,
        fraction: Callable[[], float | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.summary = summary
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval if interval is not None else (0.5 if self.tty else 10.0)
        self.fraction = fraction
        self.clock = clock
        self.started = clock()
        self._next = self.started + self.interval
        self._shown = 0  # width of the line currently on a terminal

    def line(self, now: float) -> str:
        s = self.summary
        sent = sum(s.sent.values())
        parts = [f"{self.label}: {s.read:,} read"]
        share = self.fraction() if self.fraction is not None else None
        if share is not None:
            parts[0] += f" ({share:.0%})"
        parts += [f"{sent:,} sent", f"{sum(s.acknowledged.values()):,} acknowledged"]
        if s.rejected:
            parts.append(f"{len(s.rejected):,} rejected")
        elapsed = max(now - self.started, 1e-9)
        parts.append(f"{sent / elapsed:,.0f} records/s")
        return ", ".join(parts)

    def tick(self) -> None:
        now = self.clock()
        if now >= self._next:
            self._next = now + self.interval
            self._write(self.line(now))

    def note(self, text: str) -> None:
        """Print a message on its own line without tearing the progress line."""
        self._clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.clock() - self.started >= self.interval:
            self._write(self.line(self.clock()))
        if self._shown:
            self.stream.write("\n")
            self._shown = 0
        self.stream.flush()

    def _write(self, line: str) -> None:
        if self.tty:
            self.stream.write("\r" + line.ljust(self._shown))
            self._shown = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self._shown = 0


def deliver(
    records: Iterable[MappedRecord],
    delivery: Delivery,
    *,
    stop: StopFlag | None = None,
    progress: Progress | None = None,
    flush_timeout: float = 60.0,
) -> ImportSummary:
    """Send every record until the input ends or a stop is requested; always flush at the end."""
    summary = delivery.summary
    started = time.monotonic()
    try:
        for patient_id, record_type, record in records:
            summary.records += 1
            delivery.send(patient_id, record_type, record)
            if progress is not None:
                progress.tick()
            if stop is not None and stop.signal is not None:
                summary.interrupted = stop.signal
                break
    finally:
        delivery.finish(flush_timeout)
        summary.seconds = time.monotonic() - started
        if progress is not None:
            progress.done()
    return summary
