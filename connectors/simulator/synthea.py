"""A Synthea-shaped R4 patient Bundle of a target size, for benchmarks and tests.

Like Synthea output, most bytes are Claim/ExplanationOfBenefit/DiagnosticReport/Procedure
resources the connector does not map, mixed with vitals, labs, conditions and medications.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"
VITALS = (("8867-4", "Heart rate", "/min", 60, 95), ("9279-1", "Respiratory rate", "/min", 12, 20),
          ("59408-5", "Oxygen saturation", "%", 94, 100), ("29463-7", "Body Weight", "kg", 55, 95),
          ("8302-2", "Body Height", "cm", 150, 190), ("2093-3", "Cholesterol", "mg/dL", 150, 240),
          ("2339-0", "Glucose", "mg/dL", 70, 120), ("718-7", "Hemoglobin", "g/dL", 12, 17))


def _cc(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def synthea_like_bundle(seed: int = 1, target_bytes: int = 1_000_000) -> dict[str, Any]:
    """Return a transaction Bundle of about ``target_bytes`` of JSON for one patient."""
    rnd = random.Random(seed)
    pid = str(uuid.UUID(int=rnd.getrandbits(128)))
    subject = {"reference": f"urn:uuid:{pid}"}
    entries: list[dict[str, Any]] = [{"fullUrl": f"urn:uuid:{pid}", "resource": {
        "resourceType": "Patient", "id": pid,
        "identifier": [{"type": {"coding": [{"system":
                        "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                        "system": "http://hospital.smarthealthit.org", "value": pid}],
        "name": [{"family": "Synth", "given": ["Bench"]}], "gender": "female",
        "birthDate": "1980-04-02"}, "request": {"method": "POST", "url": "Patient"}}]
    size, when = 2000, datetime(2015, 1, 1, 9, tzinfo=UTC)

    def add(resource: dict[str, Any]) -> str:
        nonlocal size
        rid = str(uuid.UUID(int=rnd.getrandbits(128)))
        resource["id"] = rid
        entry = {"fullUrl": f"urn:uuid:{rid}", "resource": resource,
                 "request": {"method": "POST", "url": resource["resourceType"]}}
        entries.append(entry)
        size += len(json.dumps(entry))
        return f"urn:uuid:{rid}"

    while size < target_bytes:
        when += timedelta(days=rnd.randint(5, 40))
        stamp = when.isoformat()
        enc = add({"resourceType": "Encounter", "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                             "code": "AMB"},
                   "type": [_cc(SNOMED, "185349003", "Encounter for check up")],
                   "subject": subject, "period": {"start": stamp, "end": stamp}})
        for code, name, unit, lo, hi in VITALS:
            add({"resourceType": "Observation", "status": "final",
                 "category": [_cc("http://terminology.hl7.org/CodeSystem/observation-category",
                                  "vital-signs", "vital-signs")],
                 "code": _cc(LOINC, code, name), "subject": subject,
                 "encounter": {"reference": enc}, "effectiveDateTime": stamp, "issued": stamp,
                 "valueQuantity": {"value": round(rnd.uniform(lo, hi), 1), "unit": unit,
                                   "system": "http://unitsofmeasure.org", "code": unit}})
        add({"resourceType": "Procedure", "status": "completed", "subject": subject,
             "code": _cc(SNOMED, "430193006", "Medication Reconciliation"),
             "encounter": {"reference": enc}, "performedPeriod": {"start": stamp, "end": stamp}})
        add({"resourceType": "DiagnosticReport", "status": "final", "subject": subject,
             "code": _cc(LOINC, "51990-0", "Basic metabolic panel"), "effectiveDateTime": stamp,
             "issued": stamp, "encounter": {"reference": enc},
             "presentedForm": [{"contentType": "text/plain", "data": "QmVuY2htYXJr" * 40}]})
        if rnd.random() < 0.3:
            add({"resourceType": "Condition", "subject": subject, "onsetDateTime": stamp,
                 "clinicalStatus": _cc("http://terminology.hl7.org/CodeSystem/"
                                       "condition-clinical", "active", "Active"),
                 "code": _cc(SNOMED, "35489007", "Depressive disorder"),
                 "encounter": {"reference": enc}})
        if rnd.random() < 0.3:
            add({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                 "subject": subject, "authoredOn": stamp,
                 "medicationCodeableConcept": _cc("http://www.nlm.nih.gov/research/umls/rxnorm",
                                                  "312940", "sertraline 50 MG Oral Tablet")})
        items = [{"sequence": i, "productOrService": _cc(SNOMED, "185349003", "Check up"),
                  "net": {"value": 129.16, "currency": "USD"}} for i in range(1, 6)]
        add({"resourceType": "Claim", "status": "active", "use": "claim", "patient": subject,
             "type": _cc("http://terminology.hl7.org/CodeSystem/claim-type", "professional",
                         "professional"), "created": stamp, "provider": {"display": "Clinic"},
             "priority": _cc("http://terminology.hl7.org/CodeSystem/processpriority",
                             "normal", "normal"),
             "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Medicaid"}}],
             "item": items, "total": {"value": 645.8, "currency": "USD"}})
        add({"resourceType": "ExplanationOfBenefit", "status": "active", "use": "claim",
             "patient": subject, "created": stamp, "outcome": "complete",
             "type": _cc("http://terminology.hl7.org/CodeSystem/claim-type", "professional",
                         "professional"), "insurer": {"display": "Medicaid"},
             "provider": {"display": "Clinic"}, "claim": {"display": "claim"},
             "insurance": [{"focal": True, "coverage": {"display": "Medicaid"}}],
             "item": items, "total": [{"category": _cc("http://terminology.hl7.org/"
                                                       "CodeSystem/adjudication", "submitted",
                                                       "Submitted Amount"),
                                       "amount": {"value": 645.8, "currency": "USD"}}]})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
