"""Map R4B Patient, Observation (vital signs), Condition, Encounter and medications to dicts."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from connectors.ehr import codes
from connectors.exceptions import FhirMappingError
from connectors.pseudonyms import device_ref, pseudonymize
from connectors.records import biometric_sample, current_version, envelope, event_id
from novamind.platform.privacy.fieldcrypt import field_context

Records = list[tuple[str, dict[str, Any]]]
_TAGS = re.compile(r"<[^>]+>")
_DOSE = re.compile(r"(\d+(?:\.\d+)?)\s*MG\b(?!\s*/)", re.IGNORECASE)
_NAME_STOP = re.compile(r"\s\d|\[|\(")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one input resource came from; ``seq`` makes it unique within a run."""

    resource_id: str | None
    location: str
    seq: int


@dataclass(frozen=True, slots=True, eq=False)
class Deferred:
    """An aggregate record built at the end of a run from ``members`` (all counted as mapped
    when ``build`` succeeds, all rejected with its reason when it raises FhirMappingError)."""

    pid: str | None
    members: list[Origin]
    build: Callable[[], Records]


@dataclass(frozen=True, slots=True)
class MapContext:
    """What every mapping function needs besides the resource."""

    key: bytes
    source: str
    as_of: date
    received_time: datetime
    encrypt_text: Callable[[str, bytes], dict[str, Any]] | None = None  # (text, associated data)
    emit_biometrics: bool = False

    def narrative(self, texts: Iterable[str | None], patient_id: str) -> dict[str, Any] | None:
        """Encrypt free text with the hook, bound to this patient's ClinicalEvent narrative
        (a ciphertext moved to another patient or field does not decrypt), or drop it when
        there is no hook."""
        text = "\n".join(t for t in texts if t)
        if not text or self.encrypt_text is None:
            return None
        return self.encrypt_text(text, field_context(patient_id, "ClinicalEvent", "narrative"))

    def envelope(self, resource: Any, record_type: str, patient_id: str,
                 when: datetime) -> dict[str, Any]:
        rid = f"{resource.get_resource_type()}/{resource.id}"
        return envelope(eid=event_id(self.source, rid, record_type), patient_id=patient_id,
                        event_time=when, received_time=self.received_time, source=self.source,
                        schema_version=current_version(record_type))


def to_utc(value: date | datetime | str | None) -> datetime | None:
    """FHIR date/dateTime/instant -> UTC datetime (dates at 00:00 UTC, naive read as UTC;
    partial dates "2018" / "2018-03", which the models keep as text, at their first day)."""
    if value is None:
        return None
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{4})(?:-(\d{2}))?", value.strip())
        if match is None:
            raise FhirMappingError("unreadable partial date")
        return datetime(int(match.group(1)), int(match.group(2) or 1), 1, tzinfo=UTC)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def codings(concept: Any) -> list[Any]:
    return list(concept.coding or ()) if concept is not None else []


def loinc_codes(concept: Any) -> list[str]:
    return [c.code for c in codings(concept) if c.code and (c.system in (None, codes.LOINC))]


def observation_time(obs: Any) -> datetime:
    period = obs.effectivePeriod
    effective = obs.effectiveDateTime or obs.effectiveInstant or (period.start if period else None)
    if isinstance(effective, str) and obs.issued:  # a partial date ("2018"): issued is sharper
        effective = None
    when = to_utc(effective or obs.issued)
    if when is None:
        raise FhirMappingError("Observation has no effective[x] or issued time")
    return when


def patient_identity(patient: Any, source: str) -> tuple[str, str, str]:
    """(system, value, basis) the pseudonym is made from, most stable first.

    ``mrn``: an identifier typed MR (v2-0203) with system and value; ``identifier``: another
    identifier with system and value (not ``use`` old/temp); ``logical-id``: the source system
    and the Patient's logical id, when it carries no usable identifier.
    """
    usable = [i for i in patient.identifier or () if i.system and i.value
              and i.use not in ("old", "temp")]
    mrn = next((i for i in usable if any(c.code == codes.MR_TYPE for c in codings(i.type))), None)
    if mrn is not None:
        return mrn.system, mrn.value, "mrn"
    if usable:
        best = sorted(usable, key=lambda i: {"official": 0, "usual": 1}.get(i.use or "", 2))[0]
        return best.system, best.value, "identifier"
    if patient.id:
        return source, f"Patient/{patient.id}", "logical-id"
    raise FhirMappingError("Patient has neither an identifier with system and value nor an id")


def map_patient(patient: Any, ctx: MapContext) -> tuple[str, Records, str]:
    """Return (pseudonym, [Demographics], identity basis); no names or dates leave."""
    system, value, basis = patient_identity(patient, ctx.source)
    pid = pseudonymize(system, value, key=ctx.key)
    rec = ctx.envelope(patient, "Demographics", pid,
                       datetime(ctx.as_of.year, ctx.as_of.month, ctx.as_of.day, tzinfo=UTC))
    rec.update(age_band=age_band(patient.birthDate, ctx.as_of),
               sex=codes.SEX.get(patient.gender or "", "UNKNOWN"))
    return pid, [("Demographics", rec)], basis


def age_band(birth: date | None, as_of: date) -> str:
    """Age band at ``as_of``; UNKNOWN without a birth date or when born after ``as_of``."""
    if birth is None or birth > as_of:
        return "UNKNOWN"
    age = as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))
    return next((band for upper, band in codes.AGE_BANDS if age <= upper), "AGE_75_PLUS")


def map_vital(obs: Any, code: str, pid: str, ctx: MapContext) -> Records:
    """Vital-sign Observation -> ClinicalEvent (+ BiometricSample when enabled)."""
    when = observation_time(obs)
    coding = next(c for c in codings(obs.code) if c.code == code)
    qty = obs.valueQuantity
    if qty is None or qty.value is None:
        raise FhirMappingError(f"Observation {code} has no valueQuantity.value")
    unit = qty.code or qty.unit
    rec = ctx.envelope(obs, "ClinicalEvent", pid, when)
    rec.update(kind="OBSERVATION", code_system="LOINC", code=code, display=coding.display,
               value_number=float(qty.value), value_unit=unit, value_code=None,
               status=obs.status, narrative=ctx.narrative((n.text for n in obs.note or ()), pid))
    out: Records = [("ClinicalEvent", rec)]
    if ctx.emit_biometrics:
        out.append(("BiometricSample", _vital_sample(obs, code, float(qty.value), unit, pid, ctx,
                                                     when)))
    return out


def _vital_sample(obs: Any, code: str, value: float, unit: str | None, pid: str,
                  ctx: MapContext, when: datetime) -> dict[str, Any]:
    metric, units = codes.VITALS[code]
    if unit not in units:
        raise FhirMappingError(f"unit {unit!r} not accepted for LOINC {code}")
    duration = None
    stage = None
    if metric == "SLEEP_STAGE":
        value = value * codes.SECONDS_PER_UNIT[unit]
        duration, stage = int(value), "ASLEEP"
    elif code == "41950-7":
        duration = 86400
    elif metric == "STEPS" and obs.effectivePeriod and obs.effectivePeriod.end:
        start, end = to_utc(obs.effectivePeriod.start), to_utc(obs.effectivePeriod.end)
        duration = int((end - start).total_seconds()) if start and end else None
    device = obs.device.reference if obs.device and obs.device.reference else "ehr"
    sample = biometric_sample(
        patient_id=pid, source=ctx.source, device_id=device_ref(ctx.source, device, key=ctx.key),
        metric=metric, value=value, event_time=when, received_time=ctx.received_time,
        duration_seconds=duration, sleep_stage=stage)
    sample["loinc"] = code
    return sample


def _code_system(system: str | None) -> str:
    if system == codes.SNOMED:
        return "SNOMED_CT"
    if system in codes.ICD10_SYSTEMS:
        return "ICD_10"
    if system == codes.LOINC:
        return "LOINC"
    return "OTHER"


def map_condition(cond: Any, pid: str, ctx: MapContext) -> Records:
    """Condition (SNOMED CT / ICD-10) -> ClinicalEvent CONDITION; notes and narrative encrypted."""
    all_codings = codings(cond.code)
    if not all_codings:
        raise FhirMappingError("Condition.code has no coding")
    coding = next((c for c in all_codings if _code_system(c.system) != "OTHER"), all_codings[0])
    when = to_utc(cond.onsetDateTime or (cond.onsetPeriod.start if cond.onsetPeriod else None)
                  or cond.recordedDate)
    if when is None:
        raise FhirMappingError("Condition has no onset[x] or recordedDate")
    status = codings(cond.clinicalStatus)
    texts = [n.text for n in cond.note or ()]
    if cond.text is not None and cond.text.div:
        texts.append(_TAGS.sub(" ", cond.text.div).strip())
    rec = ctx.envelope(cond, "ClinicalEvent", pid, when)
    rec.update(kind="CONDITION", code_system=_code_system(coding.system), code=coding.code,
               display=coding.display, value_number=None, value_unit=None, value_code=None,
               status=status[0].code if status else None, narrative=ctx.narrative(texts, pid))
    return [("ClinicalEvent", rec)]


def map_encounter(enc: Any, pid: str, ctx: MapContext) -> Records:
    """R4 Encounter (``class`` is a Coding) -> ClinicalEvent ENCOUNTER."""
    when = to_utc(enc.period.start if enc.period else None)
    if when is None:
        raise FhirMappingError("Encounter has no period.start")
    types = [c for t in enc.type or () for c in codings(t)]
    coding = types[0] if types else enc.class_fhir
    rec = ctx.envelope(enc, "ClinicalEvent", pid, when)
    rec.update(kind="ENCOUNTER", code_system=_code_system(coding.system), code=coding.code,
               display=coding.display, value_number=None, value_unit=None,
               value_code=enc.class_fhir.code, status=enc.status, narrative=None)
    return [("ClinicalEvent", rec)]


def drug_name(display: str) -> str:
    """Generic name from an RxNorm display: 'Sertraline 50 MG Oral Tablet' -> 'sertraline'."""
    text = re.sub(r"^\d+\s*HR\s+", "", display.strip(), flags=re.IGNORECASE)
    match = _NAME_STOP.search(text)
    return (text[: match.start()] if match else text).strip().lower()


def map_medication(med: Any, pid: str, ctx: MapContext) -> Records:
    """MedicationRequest / MedicationStatement (RxNorm) -> MedicationEvent."""
    kind = med.get_resource_type()
    table = codes.REQUEST_ACTIONS if kind == "MedicationRequest" else codes.STATEMENT_ACTIONS
    action = table.get(med.status, "UNKNOWN")
    if action is None:
        return []
    concept = med.medicationCodeableConcept
    if concept is None:
        raise FhirMappingError(f"{kind} without medicationCodeableConcept is not supported")
    rx = next((c for c in codings(concept) if c.system == codes.RXNORM), None)
    display = (rx.display if rx else None) or concept.text
    if not display:
        raise FhirMappingError(f"{kind} medication has no display name")
    if kind == "MedicationRequest":
        when = to_utc(med.authoredOn)
    else:
        period = med.effectivePeriod
        end = period.end if period and action == "STOPPED" else None
        when = to_utc(end or med.effectiveDateTime or (period.start if period else None)
                      or med.dateAsserted)
    if when is None:
        raise FhirMappingError(f"{kind} has no authoredOn/effective[x] time")
    rec = ctx.envelope(med, "MedicationEvent", pid, when)
    rec.update(action=action, rxnorm=rx.code if rx else None, drug=drug_name(display),
               dose_mg=_dose_mg(med, display))
    return [("MedicationEvent", rec)]


def _dose_mg(med: Any, display: str) -> float | None:
    dosage = (med.dosageInstruction if med.get_resource_type() == "MedicationRequest"
              else med.dosage) or ()
    for dose in dosage:
        for rate in dose.doseAndRate or ():
            qty = rate.doseQuantity
            if qty is not None and qty.value is not None and (qty.code or qty.unit) == "mg":
                return float(qty.value)
    match = _DOSE.search(display)
    return float(match.group(1)) if match else None
