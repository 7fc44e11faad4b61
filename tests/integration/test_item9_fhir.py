"""An EHR's PHQ-9 item 9 reaches the safety alert: FHIR import -> real Kafka -> worker -> alert.

The FHIR connector job (``run_fhir_files``, what ``novamind connect fhir`` runs) imports two
inputs to ``ehr-clinical-events``: US Core's item-9 Observation (LOINC 44260-8) recorded alone,
answered "More than half the days", which becomes a PHQ9_ITEM9 screen; and the Synthea-shaped
bundle whose full PHQ-9 panel answers item 9 "Several days". A ``novamind worker`` subprocess
publishes an ITEM9_SAFETY alert for each (its item-9 watch reads the EHR topic too), and the
screen's twin is CRITICAL without any PHQ-9 score.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pymongo import MongoClient

from connectors.jobs import run_fhir_files
from novamind.platform.settings import SecuritySettings, Settings
from tests.integration.harness import isolated, read_topic, reader_codec, workers

FIXTURES = Path(__file__).resolve().parents[1] / "connectors" / "fixtures" / "fhir"
US_CORE = FIXTURES / "us-core"
KEY = "integration-pseudonym-key-item9-0123456789"


def _lone_item9(tmp_path: Path) -> Path:
    """A bundle of US Core's Patient and its item-9 Observation, answered 2 and on its own."""
    patient = json.loads((US_CORE / "patient-example.json").read_text())
    item9 = json.loads((US_CORE / "Observation-PHQ9-item-example-44260-8.json").read_text())
    item9 = copy.deepcopy(item9)
    item9["valueCodeableConcept"] = {
        "coding": [{"system": "http://loinc.org", "code": "LA6570-1", "display": "More than half the days"}],
        "text": "More than half the days",
    }
    item9.pop("derivedFrom")  # a screening app's single question, not part of a questionnaire
    entries = [{"resource": patient}, {"resource": item9}]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    path = tmp_path / "item9-alone.json"
    path.write_text(json.dumps(bundle))
    return path


def _item9_alerts(scenario: Settings, want: int, timeout_s: float = 120) -> list[dict[str, Any]]:
    codec = reader_codec(scenario)
    deadline = time.monotonic() + timeout_s
    while True:
        alerts = [codec.decode_dict(m.value())[1] for m in read_topic(scenario, "twin-alerts")]
        item9 = [a for a in alerts if a["alert_type"] == "ITEM9_SAFETY"]
        if len(item9) >= want or time.monotonic() > deadline:
            return item9
        time.sleep(0.5)


def test_fhir_item9_alone_and_in_a_panel_raise_item9_safety(
    settings: Settings, run_id: str, tmp_path: Path
) -> None:
    scenario = isolated(settings, f"item9-{run_id}")
    scenario = scenario.model_copy(update={"security": SecuritySettings(pseudonym_key=SecretStr(KEY))})
    result = run_fhir_files([_lone_item9(tmp_path), FIXTURES / "synthea_patient_bundle.json"], scenario)
    summary = result.as_dict()
    assert result.complete and summary["rejected"] == 0, summary

    codec = reader_codec(scenario)
    results = {
        r["instrument"]: r
        for name, r in (codec.decode_dict(m.value()) for m in read_topic(scenario, "ehr-clinical-events"))
        if name == "AssessmentResult"
    }
    screen, phq9 = results["PHQ9_ITEM9"], results["PHQ9"]
    assert (screen["item_responses"], screen["total"], screen["band"]) == ([2], 2, "UNKNOWN")
    assert screen["item9_positive"] and screen["loinc_total"] == "44260-8" and screen["schema_version"] == 2
    assert phq9["item9_positive"] and phq9["item_responses"][8] == 1

    twins = MongoClient(scenario.mongo.uri.get_secret_value())[scenario.mongo.database]["twins"]
    with workers(scenario, tmp_path / "logs") as running:
        alerts = _item9_alerts(scenario, want=2)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and twins.find_one({"_id": screen["patient_id"]}) is None:
            assert running[0].alive(), running[0].log()[-3000:]
            time.sleep(0.5)
    assert sorted((a["patient_id"], a["trigger_event_id"]) for a in alerts) == sorted(
        [(screen["patient_id"], screen["event_id"]), (phq9["patient_id"], phq9["event_id"])]
    )
    by_trigger = {a["trigger_event_id"]: a for a in alerts}
    assert by_trigger[screen["event_id"]]["evidence"] == {"instrument": "PHQ9_ITEM9", "item9_score": "2"}
    assert by_trigger[phq9["event_id"]]["evidence"]["instrument"] == "PHQ9"
    assert all(a["severity"] == "CRITICAL" for a in alerts)

    twin = twins.find_one({"_id": screen["patient_id"]})
    assert twin is not None, "no twin stored for the screened patient"
    assert twin["risk_level"] == "CRITICAL" and "ITEM9_SAFETY" in twin["active_alerts"]
    assert twin["phq9_band"] is None  # a screen is not a PHQ-9 score
