"""Stage 2: fold the ordered twin inputs of each patient into their twin.

Inputs arrive on ``twin-inputs`` (daily features, assessments, symptom reports, medication,
genetic profile, demographics, and an operator's ``TwinRestore``), keyed by pseudonym, so each
patient's inputs have one total order: the partition's. The twin applies them with the pure
``apply_*`` functions and remembers the last offset applied; replaying the topic through the
same functions in one pass (:func:`replay`) gives exactly the stored twin.

Model versions (:mod:`workers.twin.versions`): each twin runs under the plan's live version
unless a rollback pinned it to another. When the plan names a shadow version, every input is
also applied to the patient's shadow twin (:mod:`workers.twin.shadow`), whose outputs are
dropped. When the live version changes (a promotion), a twin whose shadow ran the new version
takes the shadow's state: the live twin it replaces is kept as a snapshot. A shadow that ran
from the patient's first input is exactly the twin the new version alone computes, so after
the promotion the twin still equals the one-pass replay under the new version. A
``TwinRestore`` replaces the state with the snapshot it carries (rollback), so the replay
reproduces it too.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from schemas.codec import AvroCodec
from schemas.exceptions import DecodeError
from workers.deadletters import dead_letter
from workers.pipeline.ingest import Inbound
from workers.twin.clinical import apply_demographics, apply_genetic_profile, apply_medication
from workers.twin.exceptions import StateDecodeError
from workers.twin.outputs import TwinOutputs
from workers.twin.serialize import deserialize
from workers.twin.shadow import PairedMetrics, Shadow, marks
from workers.twin.state import apply_assessment, apply_daily_features, apply_symptom_report
from workers.twin.twin import TwinState, new_twin
from workers.twin.versions import STANDARD, ModelVersion, VersionPlan, VersionRegistry, registry

Apply = Callable[[TwinState, Any], tuple[TwinState, TwinOutputs]]
APPLY: dict[str, Apply] = {
    "PatientDailyFeatures": apply_daily_features,
    "AssessmentResult": apply_assessment,
    "SymptomReport": apply_symptom_report,
    "MedicationEvent": apply_medication,
    "GeneticProfile": apply_genetic_profile,
    "Demographics": apply_demographics,
}
RESTORE = "TwinRestore"
"""An operator's rollback: replaces the twin's state with the snapshot the record carries."""
# Published by the item-9 watch (workers.runtime.safety) the moment the result is read from its
# source topic (patient-reports or ehr-clinical-events); the twin only records it.
PUBLISHED_UPSTREAM = frozenset({"ITEM9_SAFETY"})


@dataclass
class Retired:
    """A state to keep as a snapshot beside the current one, e.g. the live twin a promotion
    replaced (``model_version_id`` produced it; ``note`` says why it was kept)."""

    state: TwinState
    model_version_id: str
    note: dict[str, Any]


@dataclass
class TwinEntry:
    """A patient's twin and the last ``twin-inputs`` offset applied to it.

    ``version_id`` is the model version that produced ``state`` (``None``: not yet known, the
    plan's live version is taken at the next input); ``pinned`` keeps the twin on it whatever
    the plan says (a rollback to a snapshot of another version). ``snapshot_seq`` is the
    number of the last snapshot stored (``twin_models``); ``snapshot_note`` says why the due
    snapshot is taken when it is not the update policy (a promotion, a restore).
    """

    state: TwinState
    offset: int = -1
    snapshot_due: bool = False
    partition: int = 0  # of twin-inputs, so a replica can drop the twins it no longer owns
    version_id: str | None = None
    pinned: bool = False
    shadow: Shadow | None = None
    snapshot_seq: int = 0
    snapshot_note: dict[str, Any] | None = None
    retired: list[Retired] = field(default_factory=list)


@dataclass
class TwinResult:
    updates: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    changed: dict[str, int] = field(default_factory=dict)  # patient -> partition
    restored: list[str] = field(default_factory=list)  # patients a TwinRestore rolled back
    promoted: list[str] = field(default_factory=list)  # patients whose shadow became the twin
    paired: PairedMetrics = field(default_factory=PairedMetrics)  # shadow pairs scored in the batch
    skipped: int = 0


def apply_version(
    state: TwinState, name: str, record: dict[str, Any], version: ModelVersion
) -> tuple[TwinState, TwinOutputs]:
    """Apply one decoded twin input to ``state`` under ``version`` (pure)."""
    if name == "PatientDailyFeatures":
        return apply_daily_features(state, record, params=version.forecast)
    return APPLY[name](state, record)


def apply_record(
    entry: TwinEntry, name: str, record: dict[str, Any], version: ModelVersion = STANDARD
) -> TwinOutputs:
    """Apply one decoded twin input to ``entry`` (replacing its state)."""
    entry.state, outputs = apply_version(entry.state, name, record, version)
    entry.snapshot_due = entry.snapshot_due or outputs.snapshot
    return outputs


def advance(
    entry: TwinEntry,
    name: str,
    record: dict[str, Any],
    *,
    plan: VersionPlan,
    versions: VersionRegistry,
    offset: int,
    tally: PairedMetrics | None = None,
) -> TwinOutputs | None:
    """Apply one accepted twin input (or restore) to ``entry`` under ``plan``: switch the twin
    to the live version if it is not pinned, and feed the shadow twin when the plan has one.
    Returns the live twin's outputs (``None`` for a restore, which publishes nothing); the
    pairs the input scored are also added to ``tally`` (a batch's total, for metrics).

    Raises
    ------
    StateDecodeError
        A ``TwinRestore`` whose state does not decode or is another patient's.
    """
    if name == RESTORE:
        restore(entry, record, plan=plan, versions=versions)
        return None
    version = _running_version(entry, plan, versions)
    if plan.shadow is None or entry.pinned:
        entry.shadow = None  # no longer configured (or not for a pinned twin): dropped
        return apply_record(entry, name, record, version)
    if entry.shadow is None or entry.shadow.version_id != plan.shadow.id:
        entry.shadow = Shadow(plan.shadow.id, copy.deepcopy(entry.state), started_offset=offset)
    shadow = entry.shadow
    live_before, shadow_before = marks(entry.state), marks(shadow.state)
    outputs = apply_record(entry, name, record, version)
    shadow.state, _ = apply_version(shadow.state, name, record, plan.shadow)  # never published
    live, shadowed = (live_before, marks(entry.state)), (shadow_before, marks(shadow.state))
    shadow.paired.observe(live, shadowed)
    if tally is not None:
        tally.observe(live, shadowed)
    return outputs


def _running_version(entry: TwinEntry, plan: VersionPlan, versions: VersionRegistry) -> ModelVersion:
    """The version ``entry`` runs under now, switching it to the plan's live version first when
    it is not pinned to another known one."""
    if entry.pinned:
        pinned = versions.find(entry.version_id)
        if pinned is not None:
            return pinned
        entry.pinned = False  # pinned to a version this build does not know: follows the plan
    if entry.version_id is not None and entry.version_id != plan.live.id:
        promote(entry, plan.live)
    entry.version_id = plan.live.id
    return plan.live


def promote(entry: TwinEntry, live: ModelVersion) -> None:
    """Move ``entry`` to the ``live`` version. A shadow that ran it becomes the twin, and the
    twin it replaces is kept as a snapshot; without one the state carries on under ``live``."""
    shadow = entry.shadow
    if shadow is None or shadow.version_id != live.id:
        entry.version_id = live.id
        return
    note = {"replaced_by": live.id, "shadow_started_offset": shadow.started_offset}
    entry.retired.append(Retired(entry.state, entry.version_id or "unrecorded", note))
    entry.state = shadow.state
    entry.snapshot_due = True
    entry.snapshot_note = {"promoted_from": entry.version_id or "unrecorded", **shadow.paired.to_dict()}
    entry.shadow = None
    entry.version_id = live.id


def restore(
    entry: TwinEntry, record: dict[str, Any], *, plan: VersionPlan, versions: VersionRegistry
) -> None:
    """Replace ``entry``'s state with the snapshot a ``TwinRestore`` carries. With ``pin`` (and a
    version this build knows) the twin stays on the snapshot's version; else it follows the
    plan. The restored state is stored as a new snapshot; a shadow restarts from it."""
    state = deserialize(record["state"])
    if state.patient_id != record["patient_id"]:
        raise StateDecodeError("the restored state is another patient's")
    snapshot_version = str(record["model_version_id"])
    entry.pinned = bool(record["pin"]) and versions.find(snapshot_version) is not None
    entry.version_id = snapshot_version if entry.pinned else plan.live.id
    entry.state = state
    entry.shadow = None
    entry.snapshot_due = True
    entry.snapshot_note = {
        "restored_from": int(record["snapshot"]),
        "restored_version_id": snapshot_version,
        "audit_event_id": str(record["audit_event_id"]),
    }


class TwinProcessor:
    """Applies a batch of ``twin-inputs`` messages to the twins in ``entries``.

    ``entries`` must hold every patient of the batch (loaded from the store, or new). ``plan``
    (live and shadow model versions) may be replaced between batches.
    """

    def __init__(
        self,
        *,
        codec: AvroCodec,
        plan: VersionPlan | None = None,
        versions: VersionRegistry | None = None,
    ) -> None:
        self.codec = codec
        self.plan = plan or VersionPlan()
        self.versions = versions or registry()

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
            try:
                outputs = advance(
                    entry,
                    name,
                    record,
                    plan=self.plan,
                    versions=self.versions,
                    offset=m.offset,
                    tally=result.paired,
                )
            except StateDecodeError as exc:  # a restore that cannot apply changes nothing
                result.dead_letters.append(_dead_letter(m, type(exc).__name__, str(exc)))
                continue
            entry.offset = m.offset
            result.changed[patient_id] = m.partition
            if entry.retired and patient_id not in result.promoted:
                result.promoted.append(patient_id)
            if outputs is None:
                result.restored.append(patient_id)
                continue
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
    if name not in APPLY and name != RESTORE:
        return Rejected("UnexpectedRecord", f"{name} is not a twin input")
    if m.key != record["patient_id"].encode():
        return Rejected("KeyMismatch", "message key is not the record's patient pseudonym")
    return name, record


def replay_log(
    codec: AvroCodec,
    messages: Iterable[Inbound],
    *,
    plan: VersionPlan | None = None,
    versions: VersionRegistry | None = None,
) -> dict[str, TwinState]:
    """:func:`replay` over raw ``twin-inputs`` messages, skipping what the live stage rejects."""
    accepted = (accept(codec, m) for m in messages)
    return replay((a for a in accepted if not isinstance(a, Rejected)), plan=plan, versions=versions)


def replay(
    records: Iterable[tuple[str, dict[str, Any]]],
    *,
    plan: VersionPlan | None = None,
    versions: VersionRegistry | None = None,
) -> dict[str, TwinState]:
    """The reference: every patient's twin from a twin-input log, in one pass, no I/O."""
    return {patient: e.state for patient, e in replay_entries(records, plan=plan, versions=versions).items()}


def replay_entries(
    records: Iterable[tuple[str, dict[str, Any]]],
    *,
    plan: VersionPlan | None = None,
    versions: VersionRegistry | None = None,
) -> dict[str, TwinEntry]:
    """:func:`replay` keeping each patient's whole entry (version, shadow and its metrics)."""
    plan = plan or VersionPlan()
    versions = versions or registry()
    twins: dict[str, TwinEntry] = {}
    for position, (name, record) in enumerate(records):
        entry = twins.setdefault(record["patient_id"], TwinEntry(new_twin(record["patient_id"])))
        try:
            advance(entry, name, record, plan=plan, versions=versions, offset=position)
        except StateDecodeError:
            continue  # dead-lettered by the live stage
    return twins


def paired_totals(entries: Iterable[TwinEntry]) -> PairedMetrics:
    """The shadow's paired metrics summed over ``entries``."""
    total = PairedMetrics()
    for entry in entries:
        if entry.shadow is not None:
            total.add(entry.shadow.paired)
    return total


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
