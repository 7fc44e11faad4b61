"""Write a simulation in vendor formats: FHIR R4 transaction Bundles, Fitbit Web API JSON
(fitbit patients) and Open mHealth JSON (apple_health patients). Defective deliveries are
left out: emitters produce what a well-behaved vendor would send.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors.ehr import codes
from connectors.simulator.cohort import SimPatient, SimulationResult

ANSWERS = ("LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9")
FITBIT_LEVEL = {"AWAKE": "wake", "LIGHT": "light", "DEEP": "deep", "REM": "rem",
                "ASLEEP": "asleep"}


def _clean(result: SimulationResult) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    by_patient: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for d in result.deliveries:
        if d["defect"] is None:
            by_patient[d["record"]["patient_id"]].append((d["record_type"], d["record"]))
    return by_patient


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code} | ({"display": display} if display
                                                             else {})]}


def fhir_bundle(patient: SimPatient, records: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One R4 transaction Bundle: Patient, daily vitals, PHQ-9/GAD-7 panels, medications."""
    entries: list[dict[str, Any]] = []
    fhir_id = patient.patient_id.replace("_", "-")  # FHIR ids allow [A-Za-z0-9-.] only
    subject = {"reference": f"urn:uuid:{fhir_id}"}

    def add(resource: dict[str, Any]) -> str:
        rid = f"{resource['resourceType'].lower()}-{len(entries)}-{patient.patient_id[2:14]}"
        resource["id"] = rid
        entries.append({"fullUrl": f"urn:uuid:{rid}", "resource": resource,
                        "request": {"method": "POST", "url": resource["resourceType"]}})
        return f"urn:uuid:{rid}"

    entries.append({"fullUrl": subject["reference"], "request": {"method": "POST",
                                                                 "url": "Patient"},
                    "resource": {"resourceType": "Patient", "id": fhir_id,
                                 "identifier": [{"type": _coding(
                                     "http://terminology.hl7.org/CodeSystem/v2-0203", "MR"),
                                     "system": patient.mrn_system, "value": patient.mrn}],
                                 "name": [{"family": "Synthetic", "given": [patient.mrn]}],
                                 "gender": patient.sex.lower(),
                                 "birthDate": patient.birth_date.isoformat()}})
    for rtype, rec in records:
        when = _iso(rec["event_time"])
        if rtype == "BiometricSample" and rec["metric"] in ("RESTING_HEART_RATE", "HRV_SDNN"):
            code = "40443-4" if rec["metric"] == "RESTING_HEART_RATE" else "80404-7"
            unit = "/min" if code == "40443-4" else "ms"
            add({"resourceType": "Observation", "status": "final", "subject": subject,
                 "code": _coding(codes.LOINC, code), "effectiveDateTime": when,
                 "valueQuantity": {"value": rec["value"], "unit": unit, "code": unit,
                                   "system": "http://unitsofmeasure.org"}})
        elif rtype == "AssessmentResult":
            panel = codes.PHQ9_PANEL if rec["instrument"] == "PHQ9" else codes.GAD7_PANEL
            members = [add({"resourceType": "Observation", "status": "final",
                            "subject": subject, "code": _coding(codes.LOINC, item),
                            "effectiveDateTime": when,
                            "valueCodeableConcept": _coding(codes.LOINC, ANSWERS[score])})
                       for item, score in zip(codes.ITEMS[rec["instrument"]],
                                              rec["item_responses"], strict=True)]
            add({"resourceType": "Observation", "status": "final", "subject": subject,
                 "code": _coding(codes.LOINC, panel), "effectiveDateTime": when,
                 "hasMember": [{"reference": m} for m in members]})
            add({"resourceType": "Observation", "status": "final", "subject": subject,
                 "code": _coding(codes.LOINC, rec["loinc_total"]), "effectiveDateTime": when,
                 "valueInteger": rec["total"]})
        elif rtype == "MedicationEvent":
            add({"resourceType": "MedicationStatement", "status": "active", "subject": subject,
                 "medicationCodeableConcept": _coding(
                     codes.RXNORM, rec["rxnorm"], f"{rec['drug']} {rec['dose_mg']:g} MG"),
                 "effectiveDateTime": when})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def write_fhir(result: SimulationResult, out_dir: Path) -> list[Path]:
    """One ``<pseudonym>.json`` transaction Bundle per patient."""
    out_dir.mkdir(parents=True, exist_ok=True)
    clean, paths = _clean(result), []
    for patient in result.patients:
        path = out_dir / f"{patient.patient_id}.json"
        path.write_text(json.dumps(fhir_bundle(patient, clean[patient.patient_id])))
        paths.append(path)
    return paths


def fitbit_days(patient: SimPatient, records: list[tuple[str, dict[str, Any]]]
                ) -> dict[str, dict[str, Any]]:
    """Per local day: ``heart``, ``steps``, ``hrv``, ``sleep`` Fitbit-shaped payloads."""
    tz = ZoneInfo(patient.time_zone)
    days: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "heart": [], "steps": [], "rhr": None, "hrv": None, "sleep": []})
    for rtype, rec in records:
        if rtype != "BiometricSample":
            continue
        local = rec["event_time"].astimezone(tz)
        day, clock = local.date().isoformat(), local.strftime("%H:%M:%S")
        slot, metric = days[day], rec["metric"]
        if metric == "HEART_RATE":
            slot["heart"].append({"time": clock, "value": int(rec["value"])})
        elif metric == "STEPS":
            slot["steps"].append({"time": clock, "value": int(rec["value"])})
        elif metric == "RESTING_HEART_RATE":
            slot["rhr"] = round(rec["value"])
        elif metric == "HRV_RMSSD":
            slot["hrv"] = rec["value"]
        elif metric == "SLEEP_STAGE":
            slot["sleep"].append({"dateTime": local.replace(tzinfo=None).isoformat(
                timespec="milliseconds"), "level": FITBIT_LEVEL[rec["sleep_stage"]],
                "seconds": int(rec["value"])})
    out = {}
    for day, s in days.items():
        value: dict[str, Any] = {"customHeartRateZones": [], "heartRateZones": []}
        if s["rhr"] is not None:
            value["restingHeartRate"] = s["rhr"]
        out[day] = {
            "heart": {"activities-heart": [{"dateTime": day, "value": value}],
                      "activities-heart-intraday": {"dataset": s["heart"], "datasetInterval": 5,
                                                    "datasetType": "minute"}},
            "steps": {"activities-steps": [{"dateTime": day,
                                            "value": str(sum(p["value"] for p in s["steps"]))}],
                      "activities-steps-intraday": {"dataset": s["steps"], "datasetInterval": 15,
                                                    "datasetType": "minute"}},
            "hrv": {"hrv": [] if s["hrv"] is None else [
                {"value": {"dailyRmssd": s["hrv"], "deepRmssd": s["hrv"]}, "dateTime": day}]},
            "sleep": {"sleep": [] if not s["sleep"] else [{
                "dateOfSleep": day, "isMainSleep": True, "type": "stages",
                "startTime": s["sleep"][0]["dateTime"],
                "duration": 1000 * sum(x["seconds"] for x in s["sleep"]),
                "levels": {"data": s["sleep"], "shortData": [], "summary": {}}}]},
        }
    return out


def write_fitbit(result: SimulationResult, out_dir: Path) -> list[Path]:
    """``<pseudonym>/<date>-<endpoint>.json`` for every fitbit patient."""
    clean, paths = _clean(result), []
    for patient in (p for p in result.patients if p.vendor == "fitbit"):
        folder = out_dir / patient.patient_id
        folder.mkdir(parents=True, exist_ok=True)
        for day, payloads in fitbit_days(patient, clean[patient.patient_id]).items():
            for name, payload in payloads.items():
                path = folder / f"{day}-{name}.json"
                path.write_text(json.dumps(payload))
                paths.append(path)
    return paths


def omh_points(patient: SimPatient, records: list[tuple[str, dict[str, Any]]]
               ) -> list[dict[str, Any]]:
    """Open mHealth heart-rate, step-count (2.0) and sleep-episode data points."""
    points = []
    for rtype, rec in records:
        if rtype != "BiometricSample" or rec["metric"] not in ("HEART_RATE", "STEPS"):
            continue
        header = {"id": rec["event_id"], "creation_date_time": _iso(rec["received_time"]),
                  "acquisition_provenance": {"source_name": "simulator", "modality": "sensed"}}
        start = _iso(rec["event_time"])
        if rec["metric"] == "HEART_RATE":
            header["schema_id"] = {"namespace": "omh", "name": "heart-rate", "version": "1.1"}
            body = {"heart_rate": {"value": rec["value"], "unit": "beats/min"},
                    "effective_time_frame": {"date_time": start}}
        else:
            header["schema_id"] = {"namespace": "omh", "name": "step-count", "version": "2.0"}
            body = {"step_count": {"value": rec["value"], "unit": "steps"},
                    "effective_time_frame": {"time_interval": {
                        "start_date_time": start,
                        "duration": {"value": rec["duration_seconds"], "unit": "sec"}}}}
        points.append({"header": header, "body": body})
    return points


def write_omh(result: SimulationResult, out_dir: Path) -> list[Path]:
    """``<pseudonym>.json`` arrays of data points for every apple_health patient."""
    out_dir.mkdir(parents=True, exist_ok=True)
    clean, paths = _clean(result), []
    for patient in (p for p in result.patients if p.vendor == "apple_health"):
        path = out_dir / f"{patient.patient_id}.json"
        path.write_text(json.dumps(omh_points(patient, clean[patient.patient_id])))
        paths.append(path)
    return paths
