"""Stage 1: decode, validate, deduplicate and window the source topics, per patient.

Days closed by the watermark are published as it passes them; days revised by late events
are re-published at the end of each batch, so the last published revision of a day always
reflects every event folded in so far.

``IngestProcessor.process`` takes a batch of raw Kafka messages and returns everything the
worker must publish: dead letters (original bytes, reason, position), closed or revised
``PatientDailyFeatures`` and the ordered twin inputs. Item-9 safety alerts come from
:func:`safety_alerts_of`, which needs no state and so never waits for the windows. It does
no I/O, so the consumer loop stays thin and the logic is tested without a broker.

Exactly-once effects: each patient's state remembers, per source topic, the last offset it
folded in (all of a patient's records share one partition). A batch redelivered after a crash
or rebalance skips what the recovered state already holds.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from schemas.codec import AvroCodec
from schemas.exceptions import DecodeError
from workers.deadletters import dead_letter
from workers.features.patient import DEFAULT_WINDOWS, PatientState, WindowConfig
from workers.twin.state import apply_assessment
from workers.twin.twin import new_twin
from workers.validation.exceptions import Duplicate
from workers.validation.rules import check_envelope, to_millis

WINDOWED = frozenset({"BiometricSample", "SymptomReport", "AssessmentResult"})
CONTEXT_ONLY = frozenset({"MedicationEvent", "GeneticProfile", "Demographics"})
TWIN_INPUTS = frozenset({"SymptomReport", "AssessmentResult"}) | CONTEXT_ONLY


class Inbound(NamedTuple):
    """One consumed Kafka message; ``timestamp_ms`` is the record's log timestamp."""

    key: bytes | None
    value: bytes
    topic: str
    partition: int
    offset: int
    timestamp_ms: int


@dataclass
class PatientEntry:
    """A patient's window state plus the offsets already folded in, per source topic."""

    state: PatientState
    fence: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.to_dict(), "fence": dict(self.fence)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: WindowConfig) -> PatientEntry:
        return cls(PatientState.from_dict(data["state"], config), dict(data["fence"]))


@dataclass
class IngestResult:
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    features: list[dict[str, Any]] = field(default_factory=list)
    twin_inputs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    touched: dict[str, int] = field(default_factory=dict)  # patient -> partition
    revising: set[str] = field(default_factory=set)  # patients with closed days to publish again
    skipped: int = 0  # already applied (offset fence)
    late: int = 0


class IngestProcessor:
    """Folds raw messages into per-patient state held in ``entries`` (a table or a dict)."""

    def __init__(
        self,
        *,
        codec: AvroCodec,
        entries: MutableMapping[str, PatientEntry],
        config: WindowConfig = DEFAULT_WINDOWS,
    ) -> None:
        self.codec = codec
        self.entries = entries
        self.config = config

    def process(self, messages: Iterable[Inbound]) -> IngestResult:
        """Fold a batch in; then publish the revisions its late events caused."""
        result = IngestResult()
        self.fold(messages, result)
        self.publish_revisions(result)
        return result

    def fold(self, messages: Iterable[Inbound], result: IngestResult) -> None:
        """Fold messages into the patients' state, collecting outputs into ``result``."""
        for message in messages:
            self._process_one(message, result)

    def publish_revisions(self, result: IngestResult) -> None:
        """Re-publish the days that late events of this batch revised."""
        for patient_id in result.revising:
            state = self.entries[patient_id].state
            state.flush_revisions()
            if state.outbox:
                self._publish(state.drain(), result)

    def _process_one(self, m: Inbound, out: IngestResult) -> None:
        try:
            name, record = self.codec.decode_dict(m.value, logical=False)  # timestamps as epoch ms
        except DecodeError as exc:
            self._reject(m, type(exc).__name__, str(exc), out)
            return
        patient_id = record.get("patient_id")
        if name not in WINDOWED and name not in CONTEXT_ONLY:
            self._reject(m, "UnexpectedRecord", f"{name} is not consumed from {m.topic}", out)
            return
        if m.key is None or m.key.decode("utf-8", "replace") != patient_id:
            self._reject(m, "KeyMismatch", "message key is not the record's patient pseudonym", out)
            return
        entry = self.entries.get(patient_id)
        if entry is None:
            entry = PatientEntry(PatientState(patient_id, self.config))
        if m.offset <= entry.fence.get(m.topic, -1):
            out.skipped += 1
            return
        entry.fence[m.topic] = m.offset
        self.entries[patient_id] = entry
        out.touched[patient_id] = m.partition
        error = self._fold(entry.state, name, record, _now_ms(m, record))
        if error is not None:
            out.late += error.error_class == "LateEvent"
            if error.error_class != "Duplicate":
                self._reject(m, error.error_class, str(error), out)
            return
        state = entry.state
        if state.outbox:
            self._publish(state.drain(), out)
        if state.dirty_days:
            out.revising.add(patient_id)
        if name in TWIN_INPUTS:
            out.twin_inputs.append((name, record))

    def _fold(self, state: PatientState, name: str, record: dict[str, Any], now_ms: int) -> Any:
        if name in WINDOWED:
            return state.ingest(name, record, now_ms)
        # EHR context: the same envelope and future-time rule as every record; no lateness
        # horizon (a medication started or a genotype taken years ago is still true)
        event_ms = check_envelope(record, now_ms, self.config.validation, earliest=False)
        if not isinstance(event_ms, int):
            return event_ms
        state.profile_changed = True
        state.journal.stop()
        if not state.dedup.add(record["event_id"], event_ms):
            return Duplicate("event_id", "already seen")
        return None

    @staticmethod
    def _publish(published: list[dict[str, Any]], out: IngestResult) -> None:
        out.features.extend(published)
        out.twin_inputs.extend(("PatientDailyFeatures", f) for f in published)

    @staticmethod
    def _reject(m: Inbound, error_class: str, reason: str, out: IngestResult) -> None:
        out.dead_letters.append(
            dead_letter(
                key=m.key,
                value=m.value,
                topic=m.topic,
                partition=m.partition,
                offset=m.offset,
                error_class=error_class,
                reason=reason,
                seen_ms=m.timestamp_ms,
            )
        )


def _now_ms(m: Inbound, record: dict[str, Any]) -> int:
    """The reference "now" for the future-timestamp rule: when the record was received.

    Taken from the record and its log position, never the wall clock, so a replay of the
    log validates exactly as the live run did (and a backfilled history is not "future").
    """
    received = to_millis(record.get("received_time"))
    return min(m.timestamp_ms, received) if isinstance(received, int) else m.timestamp_ms


def safety_alerts_of(codec: AvroCodec, messages: Iterable[Inbound]) -> list[dict[str, Any]]:
    """Item-9 alerts of a batch, read from the reports alone: no state, so no waiting.

    Undecodable messages are left to the fold, which dead-letters them.
    """
    alerts: list[dict[str, Any]] = []
    for m in messages:
        try:
            name, record = codec.decode_dict(m.value)
        except DecodeError:
            continue
        if (
            name == "AssessmentResult"
            and record.get("item9_positive")
            and m.key == record["patient_id"].encode()
        ):
            alerts.extend(safety_alerts(record))
    return alerts


def safety_alerts(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The item-9 alert for one PHQ-9 result, identical to the one the twin records."""
    _, outputs = apply_assessment(new_twin(result["patient_id"]), result)
    return [alert for alert in outputs.alerts if alert["alert_type"] == "ITEM9_SAFETY"]
