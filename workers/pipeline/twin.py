"""Stage 2: fold the ordered twin inputs of each patient into their twin.

Inputs arrive on ``twin-inputs`` (daily features, assessments, symptom reports, medication,
genetic profile, demographics), keyed by pseudonym, so each patient's inputs have one total
order: the partition's. The twin applies them with the pure ``apply_*`` functions and
remembers the last offset applied; replaying the topic through the same functions in one pass
(:func:`replay`) gives exactly the stored twin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from schemas.codec import AvroCodec
from schemas.exceptions import DecodeError
from workers.deadletters import dead_letter
from workers.pipeline.ingest import Inbound
from workers.twin.clinical import apply_demographics, apply_genetic_profile, apply_medication
from workers.twin.outputs import TwinOutputs
from workers.twin.state import apply_assessment, apply_daily_features, apply_symptom_report
from workers.twin.twin import TwinState, new_twin

Apply = Callable[[TwinState, Any], tuple[TwinState, TwinOutputs]]
APPLY: dict[str, Apply] = {
    "PatientDailyFeatures": apply_daily_features,
    "AssessmentResult": apply_assessment,
    "SymptomReport": apply_symptom_report,
    "MedicationEvent": apply_medication,
    "GeneticProfile": apply_genetic_profile,
    "Demographics": apply_demographics,
}
# Published by the ingest stage the moment the report is read; the twin only records it.
PUBLISHED_UPSTREAM = frozenset({"ITEM9_SAFETY"})


@dataclass
class TwinEntry:
    """A patient's twin and the last ``twin-inputs`` offset applied to it."""

    state: TwinState
    offset: int = -1
    snapshot_due: bool = False
    partition: int = 0  # of twin-inputs, so a replica can drop the twins it no longer owns


@dataclass
class TwinResult:
    updates: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    changed: dict[str, int] = field(default_factory=dict)  # patient -> partition
    skipped: int = 0


def apply_record(entry: TwinEntry, name: str, record: dict[str, Any]) -> TwinOutputs:
    """Apply one decoded twin input to ``entry`` (replacing its state)."""
    entry.state, outputs = APPLY[name](entry.state, record)
    entry.snapshot_due = entry.snapshot_due or outputs.snapshot
    return outputs


class TwinProcessor:
    """Applies a batch of ``twin-inputs`` messages to the twins in ``entries``.

    ``entries`` must hold every patient of the batch (loaded from the store, or new).
    """

    def __init__(self, *, codec: AvroCodec) -> None:
        self.codec = codec

    def process(self, messages: Iterable[Inbound], entries: MutableMapping[str, TwinEntry]) -> TwinResult:
        result = TwinResult()
        for m in messages:
            accepted = accept(self.codec, m)
            if isinstance(accepted, Rejected):
                result.dead_letters.append(_dead_letter(m, accepted.error_class, accepted.reason))
                continue
            name, record = accepted
            patient_id = record["patient_id"]
            entry = entries[patient_id]
            if m.offset <= entry.offset:
                result.skipped += 1
                continue
            outputs = apply_record(entry, name, record)
            entry.offset = m.offset
            result.changed[patient_id] = m.partition
            if outputs.update is not None:
                result.updates.append(outputs.update)
            result.alerts.extend(a for a in outputs.alerts if a["alert_type"] not in PUBLISHED_UPSTREAM)
        return result


class Rejected(NamedTuple):
    error_class: str
    reason: str


def accept(codec: AvroCodec, m: Inbound) -> tuple[str, dict[str, Any]] | Rejected:
    """A twin input's record, or why it is not one (the live stage and replay agree on this)."""
    try:
        name, record = codec.decode_dict(m.value)
    except DecodeError as exc:
        return Rejected(type(exc).__name__, str(exc))
    if name not in APPLY:
        return Rejected("UnexpectedRecord", f"{name} is not a twin input")
    if m.key != record["patient_id"].encode():
        return Rejected("KeyMismatch", "message key is not the record's patient pseudonym")
    return name, record


def replay_log(codec: AvroCodec, messages: Iterable[Inbound]) -> dict[str, TwinState]:
    """:func:`replay` over raw ``twin-inputs`` messages, skipping what the live stage rejects."""
    accepted = (accept(codec, m) for m in messages)
    return replay(a for a in accepted if not isinstance(a, Rejected))


def replay(records: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, TwinState]:
    """The reference: every patient's twin from a twin-input log, in one pass, no I/O."""
    twins: dict[str, TwinEntry] = {}
    for name, record in records:
        entry = twins.setdefault(record["patient_id"], TwinEntry(new_twin(record["patient_id"])))
        apply_record(entry, name, record)
    return {patient: entry.state for patient, entry in twins.items()}


def _dead_letter(m: Inbound, error_class: str, reason: str) -> dict[str, Any]:
    return dead_letter(
        key=m.key,
        value=m.value,
        topic=m.topic,
        partition=m.partition,
        offset=m.offset,
        error_class=error_class,
        reason=reason,
        seen_ms=m.timestamp_ms,
    )
