"""The OpenAPI document, health, unknown routes and the acknowledged-submissions LRU."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.intake.idempotency import Acknowledged, MemorySubmissionLedger
from tests.connectors.intake.conftest import Intake


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


async def test_openapi_document_lists_both_endpoints(intake: Intake) -> None:
    resp = await intake.client.get("/openapi.json")

    assert resp.status == 200 and resp.content_type == "application/json"
    doc = json.loads(await resp.text())
    assert doc["openapi"].startswith("3.1")
    paths = doc["paths"]
    for path, schema in [
        ("/v1/patients/{patient_id}/symptom-reports", "SymptomReportRequest"),
        ("/v1/patients/{patient_id}/assessments", "AssessmentRequest"),
    ]:
        post = paths[path]["post"]
        ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{schema}"
        assert {"200", "201", "401", "403", "409", "422", "503"} <= set(post["responses"])
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):  # every reference resolves inside the document
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas
    symptom = schemas["SymptomReportRequest"]
    assert symptom["additionalProperties"] is False
    assert symptom["properties"]["severity"]["maximum"] == 10
    assert set(schemas["AssessmentRequest"]["required"]) >= {
        "submission_id",
        "instrument",
        "item_responses",
        "event_time",
    }
    items = schemas["AssessmentRequest"]["properties"]["item_responses"]["items"]
    assert (items["minimum"], items["maximum"]) == (0, 3)


async def test_healthz_and_unknown_routes(intake: Intake) -> None:
    assert (await (await intake.client.get("/healthz")).json()) == {"status": "ok"}
    missing = await intake.client.get("/v1/nothing")
    assert missing.status == 404 and (await missing.json())["errors"][0]["type"] == "http_error"
    wrong_method = await intake.client.get("/v1/patients/p_x/assessments")
    assert wrong_method.status == 405 and "POST" in wrong_method.headers["Allow"]


def test_lru_evicts_the_least_recently_used() -> None:
    lru = MemorySubmissionLedger(capacity=2)
    for name in ("a", "b"):
        lru.put(("p", name), Acknowledged(name, {"event_id": name}))
    assert lru.get(("p", "a")) is not None  # touch a: b is now the oldest
    lru.put(("p", "c"), Acknowledged("c", {"event_id": "c"}))
    assert len(lru) == 2 and lru.get(("p", "b")) is None and lru.get(("p", "a")) is not None
    with pytest.raises(ValueError):
        MemorySubmissionLedger(capacity=0)
