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
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from connectors.ehr import clinical, codes
from connectors.ehr.assessments import AssessmentCollector
from connectors.ehr.clinical import MapContext, Records
from connectors.ehr.genomics import GenomicsCollector
from connectors.ehr.reader import RawResource, iter_resources
from connectors.exceptions import FhirMappingError

MappedRecord = tuple[str, str, dict[str, Any]]  # (patient pseudonym, record type, record)
MODELS: dict[str, Any] = {
    "Patient": Patient, "Observation": Observation, "Condition": Condition,
    "Encounter": Encounter, "MedicationRequest": MedicationRequest,
    "MedicationStatement": MedicationStatement,
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
    """Counts for one mapper: read = mapped + skipped + rejected."""

    read: int = 0
    mapped: int = 0
    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: list[Rejection] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.read, "mapped": self.mapped, "records": self.records,
                "skipped": dict(self.skipped),
                "rejected": [{"id": r.resource_id, "path": r.path, "reason": r.reason}
                             for r in self.rejected]}


def _json_path(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def observation_kind(data: dict[str, Any]) -> str | None:
    """Classify a raw Observation dict by code before any model is built."""
    found = {c.get("code") for c in (data.get("code") or {}).get("coding") or ()
             if isinstance(c, dict)}
    if found & codes.VITALS.keys():
        return "vital"
    if found & (codes.PANELS.keys() | codes.TOTALS.keys() | codes.ITEM_CODES):
        return "assessment"
    profiles = (data.get("meta") or {}).get("profile") or ()
    if found & codes.GENOMIC_CODES or any(_GENOMICS_PROFILE in str(p) for p in profiles):
        return "genomic"
    return None


def _subject_key(reference: str | None) -> str | None:
    if not reference:
        return None
    if "Patient/" in reference:
        return "Patient/" + reference.rsplit("Patient/", 1)[1].split("/")[0]
    return reference


class FhirMapper:
    """Map FHIR R4 resources to ``(pseudonym, record_type, dict)`` tuples.

    ``key`` is the pseudonymisation key (from settings); ``as_of`` fixes age bands;
    ``patient_index`` (reference -> pseudonym) carries patients seen in earlier runs.
    """

    def __init__(self, *, key: bytes, as_of: date, source: str = "fhir:ehr",
                 encrypt_text: Callable[[str, bytes], dict[str, Any]] | None = None,
                 received_time: datetime | None = None, emit_biometrics: bool = False,
                 patient_index: dict[str, str] | None = None) -> None:
        self.ctx = MapContext(key=key, source=source, as_of=as_of,
                              received_time=received_time or datetime.now(UTC),
                              encrypt_text=encrypt_text, emit_biometrics=emit_biometrics)
        self.summary = MappingSummary()
        self.patients: dict[str, str] = dict(patient_index or {})

    def map_path(self, path: str | Path) -> Iterator[MappedRecord]:
        """Map every resource of a Bundle/NDJSON file or a directory of them."""
        return self.map_resources(iter_resources(path))

    def map_resources(self, resources: Iterable[RawResource]) -> Iterator[MappedRecord]:
        """Map a stream of raw resources; deferred aggregates are emitted at the end."""
        pending: dict[str, list[tuple[Any, RawResource]]] = {}
        assessments = AssessmentCollector(self.ctx)
        genomics = GenomicsCollector(self.ctx)
        for raw in resources:
            self.summary.read += 1
            model = self._model(raw)
            if model is None:
                continue
            if isinstance(model, Patient):
                yield from self._patient(model, raw, pending)
                continue
            subject = _subject_key(model.subject.reference if model.subject else None)
            if subject is None:
                self._reject(raw, "resource has no subject reference")
                continue
            kind = observation_kind(raw.data or {}) if isinstance(model, Observation) else None
            if kind in ("assessment", "genomic"):
                collector: Any = assessments if kind == "assessment" else genomics
                try:
                    collector.add(model, subject, raw.location, self._keys(model, raw))
                    self.summary.mapped += 1
                except FhirMappingError as exc:
                    self._reject(raw, str(exc))
            elif subject in self.patients:
                yield from self._emit(self.patients[subject], model, raw)
            else:
                pending.setdefault(subject, []).append((model, raw))
        for subject, items in pending.items():
            for _, raw in items:
                self._reject(raw, f"subject {subject} not found in the input")
        for collector in (assessments, genomics):
            for subject, location, rid, build in collector.finish(self.patients.get):
                yield from self._deferred(subject, location, rid, build)

    def _model(self, raw: RawResource) -> Any | None:
        if raw.data is None:
            self.summary.rejected.append(Rejection(None, raw.location, raw.error or "no data"))
            return None
        rtype = raw.data.get("resourceType")
        if rtype not in MODELS:
            self.summary.skipped[str(rtype)] += 1
            return None
        if rtype == "Observation" and observation_kind(raw.data) is None:
            self.summary.skipped["Observation:unmapped-code"] += 1
            return None
        try:
            return MODELS[rtype].model_validate(raw.data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = f"{raw.location}{_json_path(tuple(err['loc']))}"
            self.summary.rejected.append(Rejection(raw.data.get("id"), where, err["msg"]))
        except (ValueError, TypeError) as exc:
            self.summary.rejected.append(Rejection(raw.data.get("id"), raw.location, str(exc)))
        return None

    @staticmethod
    def _keys(model: Any, raw: RawResource) -> list[str]:
        rtype = model.get_resource_type()
        keys = [f"{rtype}/{model.id}", f"urn:uuid:{model.id}"] if model.id else []
        return keys + ([raw.full_url] if raw.full_url else [])

    def _patient(self, patient: Patient, raw: RawResource,
                 pending: dict[str, list[tuple[Any, RawResource]]]) -> Iterator[MappedRecord]:
        try:
            pid, records = clinical.map_patient(patient, self.ctx)
        except FhirMappingError as exc:
            self._reject(raw, str(exc))
            return
        self.summary.mapped += 1
        yield from self._count(pid, records)
        for key in self._keys(patient, raw):
            self.patients[key] = pid
            for model, waiting in pending.pop(key, ()):
                yield from self._emit(pid, model, waiting)

    def _emit(self, pid: str, model: Any, raw: RawResource) -> Iterator[MappedRecord]:
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
            self._reject(raw, str(exc) or "no LOINC vital-sign code")
            return
        if not records:
            self.summary.skipped[f"{rtype}:{getattr(model, 'status', None)}"] += 1
            return
        self.summary.mapped += 1
        yield from self._count(pid, records)

    def _deferred(self, subject: str, location: str, rid: str,
                  build: Callable[[str], Records]) -> Iterator[MappedRecord]:
        pid = self.patients.get(subject)
        try:
            if pid is None:
                raise FhirMappingError(f"subject {subject} not found in the input")
            records = build(pid)
        except FhirMappingError as exc:
            self.summary.mapped -= 1
            self.summary.rejected.append(Rejection(rid, location, str(exc)))
            return
        yield from self._count(pid, records)

    def _count(self, pid: str, records: Records) -> Iterator[MappedRecord]:
        for rtype, rec in records:
            self.summary.records += 1
            yield pid, rtype, rec

    def _reject(self, raw: RawResource, reason: str) -> None:
        rid = (raw.data or {}).get("id")
        self.summary.rejected.append(Rejection(rid, raw.location, reason))
