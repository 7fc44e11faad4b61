"""FHIR R4 (R4B models) resources -> contract record dicts, with a per-run summary.

Only the resource types and Observation codes we map get a pydantic model; everything
else is counted and skipped from the raw dict. A malformed resource is rejected with its id
and JSON path and never stops the rest. Free text is encrypted by ``encrypt_text`` or dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from connectors.ehr import clinical, codes
from connectors.ehr.assessments import SCORED_STATUSES, AssessmentCollector, questionnaire
from connectors.ehr.clinical import Deferred, MapContext, Origin, Records
from connectors.ehr.genomics import GenomicsCollector
from connectors.ehr.patients import MemoryPatientIndex, PatientDirectory
from connectors.ehr.reader import RawResource, iter_resources
from connectors.exceptions import ConnectorError, FhirMappingError, FhirSkip

MappedRecord = tuple[str, str, dict[str, Any]]  # (patient pseudonym, record type, record)
MODELS: dict[str, Any] = {
    "Patient": Patient, "Observation": Observation, "Condition": Condition,
    "Encounter": Encounter, "MedicationRequest": MedicationRequest,
    "MedicationStatement": MedicationStatement, "QuestionnaireResponse": QuestionnaireResponse,
    "DiagnosticReport": DiagnosticReport,  # pharmacogenomic reports only
}
_GENOMICS_PROFILE = "genomics-reporting"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A resource that could not be mapped: its id, JSON path and the reason."""

    resource_id: str | None
    path: str
    reason: str


@dataclass
class MappingSummary:
    """Counts for one mapper. Every resource read (``read``, plus ``unparked``: parked by an
    earlier run and applied now) ends in exactly one of ``mapped`` (it became, or went into,
    a record), ``skipped`` (by reason), ``rejected`` or ``parked`` (its Patient is unknown;
    kept for a later run), so ``read + unparked == mapped + skipped + rejected + parked``
    (:attr:`balanced`). ``identities`` counts Patients by what their pseudonym was made of
    (``mrn``, ``identifier``, ``logical-id``)."""

    read: int = 0
    unparked: int = 0
    mapped: int = 0
    parked: int = 0
    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: list[Rejection] = field(default_factory=list)
    identities: Counter[str] = field(default_factory=Counter)

    @property
    def balanced(self) -> bool:
        return self.read + self.unparked == (self.mapped + sum(self.skipped.values())
                                             + len(self.rejected) + self.parked)

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.read, "unparked": self.unparked, "mapped": self.mapped,
                "parked": self.parked, "records": self.records,
                "identities": dict(self.identities), "skipped": dict(self.skipped),
                "rejected": [{"id": r.resource_id, "path": r.path, "reason": r.reason}
                             for r in self.rejected]}


@dataclass
class _Run:
    """The state of one ``map_resources`` call."""

    assessments: AssessmentCollector
    genomics: GenomicsCollector
    pending: dict[str, list[tuple[Any, RawResource, Origin]]] = field(default_factory=dict)


def _json_path(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def _raw_codings(value: Any) -> list[dict[str, Any]]:
    coding = value.get("coding") if isinstance(value, dict) else None
    return [c for c in coding if isinstance(c, dict)] if isinstance(coding, list) else []


def observation_kind(data: dict[str, Any]) -> str | None:
    """Classify a raw Observation dict by code before any model is built."""
    found = {c.get("code") for c in _raw_codings(data.get("code"))}
    if found & codes.VITALS.keys():
        return "vital"
    if found & (codes.PANELS.keys() | codes.TOTALS.keys() | codes.ITEM_CODES):
        return "assessment"
    meta = data.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    if found & codes.GENOMIC_CODES or any(
            _GENOMICS_PROFILE in str(p) for p in profiles or () if isinstance(profiles, list)):
        return "genomic"
    return None


def genomic_report(data: dict[str, Any]) -> bool:
    """A DiagnosticReport of the genomics-reporting IG (code 51969-4 or its profile)."""
    found = {c.get("code") for c in _raw_codings(data.get("code"))}
    meta = data.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    return codes.GENOMIC_REPORT in found or any(
        _GENOMICS_PROFILE in str(p) for p in profiles or () if isinstance(profiles, list))


def _well_formed_code(data: dict[str, Any]) -> bool:
    code = data.get("code")
    return isinstance(code, dict) and isinstance(code.get("coding", []), list)


def _subject_key(reference: str | None) -> str | None:
    if not reference:
        return None
    if "Patient/" in reference:
        return "Patient/" + reference.rsplit("Patient/", 1)[1].split("/")[0]
    return reference


class FhirMapper:
    """Map FHIR R4 resources to ``(pseudonym, record_type, dict)`` tuples.

    ``key`` is the pseudonymisation key (from settings); ``as_of`` fixes age bands;
    ``patients`` (a :class:`~connectors.ehr.patients.PatientDirectory`) remembers Patients
    across runs and keeps resources whose Patient is unknown; ``fetch_patient`` (a Patient
    reference -> the Patient resource or None) asks the source for such a Patient first.
    ``identities`` tells, per pseudonym minted in this run, what it was made of.
    """

    def __init__(self, *, key: bytes, as_of: date, source: str = "fhir:ehr",
                 encrypt_text: Callable[[str, bytes], dict[str, Any]] | None = None,
                 received_time: datetime | None = None, emit_biometrics: bool = False,
                 patients: PatientDirectory | None = None,
                 fetch_patient: Callable[[str], RawResource | None] | None = None) -> None:
        self.ctx = MapContext(key=key, source=source, as_of=as_of,
                              received_time=received_time or datetime.now(UTC),
                              encrypt_text=encrypt_text, emit_biometrics=emit_biometrics)
        self.summary = MappingSummary()
        self.directory: PatientDirectory = patients if patients is not None else MemoryPatientIndex()
        self.fetch_patient = fetch_patient
        self.patients: dict[str, str] = {}  # this run's references (incl. urn:uuid, fullUrl)
        self.identities: dict[str, str] = {}
        self._seq = 0

    def map_path(self, path: str | Path) -> Iterator[MappedRecord]:
        """Map every resource of a Bundle/NDJSON file or a directory of them."""
        return self.map_resources(iter_resources(path))

    def map_resources(self, resources: Iterable[RawResource]) -> Iterator[MappedRecord]:
        """Map a stream of raw resources; aggregates (assessments, genetic profiles) and
        resources waiting for their Patient are settled at the end."""
        run = _Run(AssessmentCollector(self.ctx), GenomicsCollector(self.ctx))
        for raw in resources:
            self.summary.read += 1
            yield from self._take(raw, run)
        if self.fetch_patient is not None:
            for subject in [s for s in run.pending if s.startswith("Patient/")]:
                try:
                    fetched = self.fetch_patient(subject)
                except ConnectorError:  # refused or unreachable: the resources are parked
                    fetched = None
                if fetched is not None and subject in run.pending:
                    self.summary.read += 1
                    yield from self._take(fetched, run)
        for raw in self.directory.releasable():
            self.summary.unparked += 1
            yield from self._take(raw, run)
        for subject, waiting in run.pending.items():
            for _, raw, _ in waiting:
                self.directory.park(subject, raw)
                self.summary.parked += 1
        for collector in (run.assessments, run.genomics):
            for deferred in collector.finish():
                yield from self._deferred(deferred)

    def _take(self, raw: RawResource, run: _Run) -> Iterator[MappedRecord]:
        self._seq += 1
        origin = Origin((raw.data or {}).get("id"), raw.location, self._seq)
        model = self._model(raw, origin)
        if model is None:
            return
        if isinstance(model, Patient):
            yield from self._patient(model, raw, origin, run)
            return
        subject = _subject_key(model.subject.reference if model.subject else None)
        if subject is None:
            self._reject(origin, "resource has no subject reference")
            return
        if not subject.startswith(("Patient/", "urn:uuid:", "urn:oid:")):
            self._reject(origin, f"subject {subject.split('/')[0]} is not a Patient reference")
            return
        pid = self.patients.get(subject) or self.directory.lookup(subject)
        if pid is not None:
            yield from self._apply(pid, model, raw, origin, run)
        else:
            run.pending.setdefault(subject, []).append((model, raw, origin))

    def _apply(self, pid: str, model: Any, raw: RawResource, origin: Origin,
               run: _Run) -> Iterator[MappedRecord]:
        if isinstance(model, QuestionnaireResponse):
            if questionnaire(model) is None:
                self.summary.skipped["QuestionnaireResponse:other-questionnaire"] += 1
            elif model.status not in SCORED_STATUSES:
                self.summary.skipped[f"QuestionnaireResponse:{model.status}"] += 1
            else:
                run.assessments.add_response(model, pid, origin, self._keys(model, raw))
            return
        if isinstance(model, DiagnosticReport):
            run.genomics.add_report(pid, origin)
            return
        kind = observation_kind(raw.data or {}) if isinstance(model, Observation) else None
        if kind in ("assessment", "genomic"):
            collector: Any = run.assessments if kind == "assessment" else run.genomics
            try:
                collector.add(model, pid, origin, self._keys(model, raw))
            except FhirSkip as skip:
                self.summary.skipped[str(skip)] += 1
            except FhirMappingError as exc:
                self._reject(origin, str(exc))
            return
        yield from self._emit(pid, model, origin)

    def _model(self, raw: RawResource, origin: Origin) -> Any | None:
        if raw.data is None:
            self._reject(origin, raw.error or "no data")
            return None
        rtype = raw.data.get("resourceType")
        if rtype not in MODELS:
            self.summary.skipped[str(rtype)] += 1
            return None
        if (rtype == "Observation" and _well_formed_code(raw.data)
                and observation_kind(raw.data) is None):
            self.summary.skipped["Observation:unmapped-code"] += 1
            return None
        if rtype == "DiagnosticReport" and not genomic_report(raw.data):
            self.summary.skipped["DiagnosticReport"] += 1
            return None
        try:
            return MODELS[rtype].model_validate(raw.data)
        except ValidationError as exc:
            err = exc.errors()[0]
            self._reject(origin, err["msg"], f"{raw.location}{_json_path(tuple(err['loc']))}")
        except (ValueError, TypeError) as exc:
            self._reject(origin, str(exc))
        return None

    @staticmethod
    def _keys(model: Any, raw: RawResource) -> list[str]:
        rtype = model.get_resource_type()
        keys = [f"{rtype}/{model.id}", f"urn:uuid:{model.id}"] if model.id else []
        return keys + ([raw.full_url] if raw.full_url else [])

    def _patient(self, patient: Patient, raw: RawResource, origin: Origin,
                 run: _Run) -> Iterator[MappedRecord]:
        try:
            pid, records, basis = clinical.map_patient(patient, self.ctx)
        except FhirMappingError as exc:
            self._reject(origin, str(exc))
            return
        self.summary.mapped += 1
        self.summary.identities[basis] += 1
        self.identities[pid] = basis
        keys = self._keys(patient, raw)
        self.directory.record([k for k in keys if k.startswith("Patient/")], pid, basis)
        yield from self._count(pid, records)
        for key in keys:
            self.patients[key] = pid
            for model, waiting, waiting_origin in run.pending.pop(key, ()):
                yield from self._apply(pid, model, waiting, waiting_origin, run)

    def _emit(self, pid: str, model: Any, origin: Origin) -> Iterator[MappedRecord]:
        rtype = model.get_resource_type()
        try:
            if rtype == "Observation":
                code = next(c for c in clinical.loinc_codes(model.code) if c in codes.VITALS)
                records = clinical.map_vital(model, code, pid, self.ctx)
            elif rtype == "Condition":
                records = clinical.map_condition(model, pid, self.ctx)
            elif rtype == "Encounter":
                records = clinical.map_encounter(model, pid, self.ctx)
            else:
                records = clinical.map_medication(model, pid, self.ctx)
        except (FhirMappingError, StopIteration) as exc:
            self._reject(origin, str(exc) or "no LOINC vital-sign code")
            return
        if not records:
            self.summary.skipped[f"{rtype}:{getattr(model, 'status', None)}"] += 1
            return
        self.summary.mapped += 1
        yield from self._count(pid, records)

    def _deferred(self, deferred: Deferred) -> Iterator[MappedRecord]:
        head = deferred.members[0]
        try:
            records = deferred.build()
            if deferred.pid is None:
                raise FhirMappingError("no patient for the record")
        except FhirSkip as skip:
            self.summary.skipped[str(skip)] += len(deferred.members)
            return
        except FhirMappingError as exc:
            self._reject(head, str(exc))
            for member in deferred.members[1:]:
                self._reject(member, f"with {head.resource_id}: {exc}")
            return
        self.summary.mapped += len(deferred.members)
        yield from self._count(deferred.pid, records)

    def _count(self, pid: str, records: Records) -> Iterator[MappedRecord]:
        for rtype, rec in records:
            self.summary.records += 1
            yield pid, rtype, rec

    def _reject(self, origin: Origin, reason: str, path: str | None = None) -> None:
        self.summary.rejected.append(Rejection(origin.resource_id, path or origin.location, reason))
