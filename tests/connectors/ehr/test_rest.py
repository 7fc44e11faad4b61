"""FhirRestSync against a real aiohttp FHIR-like server on 127.0.0.1."""

import base64
import json
from datetime import date

import aiohttp
import pytest
from aiohttp import web

from connectors.ehr import FhirMapper
from connectors.ehr.rest import FhirRestSync, load_cursor
from connectors.exceptions import SyncError, TokenError
from connectors.http import RetryPolicy, parse_retry_after
from tests.connectors.conftest import PSEUDONYM_KEY, RecordingSleep

PATIENT = {
    "resourceType": "Patient",
    "id": "r1",
    "meta": {"lastUpdated": "2024-05-01T10:00:00Z"},
    "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-9"}],
    "gender": "female",
    "birthDate": "1990-01-01",
}


def obs(i, updated):
    return {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": "final",
        "meta": {"lastUpdated": updated},
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/r1"},
        "effectiveDateTime": f"2024-05-01T0{i}:00:00Z",
        "valueQuantity": {"value": 60 + i, "unit": "/min", "code": "/min"},
    }


def fhir_app(state):
    async def token(request):
        form = await request.post()
        auth = request.headers.get("Authorization", "")
        state["token_calls"].append(dict(form))
        if auth != "Basic " + base64.b64encode(b"novamind:s3cret").decode():
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response(
            {
                "access_token": f"tok{len(state['token_calls'])}",
                "token_type": "bearer",
                "expires_in": 300,
                "scope": form["scope"],
            }
        )

    def authorized(request):
        return request.headers.get("Authorization", "").startswith("Bearer tok")

    async def patient(request):
        state["queries"].append(("Patient", dict(request.query)))
        if not authorized(request):
            return web.json_response({}, status=401)
        return web.json_response(
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"fullUrl": "http://x/Patient/r1", "resource": PATIENT}],
            }
        )

    async def observation(request):
        state["queries"].append(("Observation", dict(request.query)))
        page = request.query.get("page", "1")
        if page == "2" and state["fail_page2"] > 0:
            state["fail_page2"] -= 1
            if state["fail_page2"] == 1:
                return web.json_response({}, status=429, headers={"Retry-After": "2"})
            return web.Response(status=503)
        if page == "1":
            body = {
                "resourceType": "Bundle",
                "type": "searchset",
                "link": [{"relation": "next", "url": str(request.url.with_query({"page": "2"}))}],
                "entry": [
                    {"resource": obs(1, "2024-05-01T11:00:00Z")},
                    {"resource": obs(2, "2024-05-01T12:00:00Z")},
                ],
            }
        else:
            body = {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": obs(3, "2024-05-02T08:30:00Z")}],
            }
        return web.json_response(body)

    async def patient_by_id(request):
        state["queries"].append(("Patient/id", {"id": request.match_info["id"]}))
        if not authorized(request):
            return web.json_response({}, status=401)
        if request.match_info["id"] != "r1":
            return web.json_response({"resourceType": "OperationOutcome"}, status=404)
        return web.json_response(PATIENT)

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_get("/fhir/Patient", patient)
    app.router.add_get("/fhir/Patient/{id}", patient_by_id)
    app.router.add_get("/fhir/Observation", observation)
    return app


@pytest.fixture
def state():
    return {"token_calls": [], "queries": [], "fail_page2": 2}


async def test_incremental_sync_pages_retries_and_persists_cursor(http_server_factory, state, tmp_path):
    base = await http_server_factory(fhir_app(state))
    cursor_path = tmp_path / "cursor.json"
    sleep = RecordingSleep()
    async with aiohttp.ClientSession() as session:
        sync = FhirRestSync(
            session=session,
            base_url=f"{base}/fhir",
            token_url=f"{base}/token",
            client_id="novamind",
            client_secret="s3cret",
            cursor_path=cursor_path,
            resource_types=("Patient", "Observation"),
            policy=RetryPolicy(max_attempts=4, base=0.01),
            sleep=sleep,
        )
        resources = [r async for r in sync.resources()]
    assert [r.data["id"] for r in resources] == ["r1", "o1", "o2", "o3"]
    assert sleep.delays[0] == 2.0  # Retry-After honoured; then backoff for the 503
    assert len(sleep.delays) == 2
    assert state["token_calls"][0]["scope"] == "system/Patient.read system/Observation.read"
    assert state["token_calls"][0]["grant_type"] == "client_credentials"
    assert len(state["token_calls"]) == 1  # token cached across requests
    assert load_cursor(cursor_path) == {
        "Patient": "2024-05-01T10:00:00Z",
        "Observation": "2024-05-02T08:30:00Z",
    }
    mapper = FhirMapper(key=PSEUDONYM_KEY, as_of=date(2024, 6, 1))
    out = list(mapper.map_resources(resources))
    assert [t for _, t, _ in out].count("ClinicalEvent") == 3

    state["queries"].clear()
    async with aiohttp.ClientSession() as session:
        sync = FhirRestSync(
            session=session,
            base_url=f"{base}/fhir",
            token_url=f"{base}/token",
            client_id="novamind",
            client_secret="s3cret",
            cursor_path=cursor_path,
            resource_types=("Patient", "Observation"),
            sleep=sleep,
        )
        [r async for r in sync.resources()]
    first_obs = next(q for t, q in state["queries"] if t == "Observation")
    assert first_obs["_lastUpdated"] == "ge2024-05-02T08:30:00Z"
    assert first_obs["_sort"] == "_lastUpdated"


async def test_bad_client_secret_is_a_token_error(http_server_factory, state, tmp_path):
    base = await http_server_factory(fhir_app(state))
    async with aiohttp.ClientSession() as session:
        sync = FhirRestSync(
            session=session,
            base_url=f"{base}/fhir",
            token_url=f"{base}/token",
            client_id="novamind",
            client_secret="wrong",
            cursor_path=tmp_path / "c.json",
            resource_types=("Patient",),
        )
        with pytest.raises(TokenError):
            [r async for r in sync.resources()]


async def test_persistent_5xx_gives_up_with_sync_error(http_server_factory, state, tmp_path):
    state["fail_page2"] = 100
    base = await http_server_factory(fhir_app(state))
    cursor_path = tmp_path / "c.json"
    cursor_path.write_text(json.dumps({"Observation": "2024-04-01T00:00:00Z"}))
    async with aiohttp.ClientSession() as session:
        sync = FhirRestSync(
            session=session,
            base_url=f"{base}/fhir",
            token_url=f"{base}/token",
            client_id="novamind",
            client_secret="s3cret",
            cursor_path=cursor_path,
            resource_types=("Observation",),
            policy=RetryPolicy(max_attempts=3, base=0.0),
            sleep=RecordingSleep(),
        )
        with pytest.raises(SyncError, match="after 3 attempts"):
            [r async for r in sync.resources()]
    assert load_cursor(cursor_path) == {"Observation": "2024-04-01T00:00:00Z"}  # not advanced


def test_retry_after_accepts_seconds_and_http_dates():
    from datetime import UTC, datetime

    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("soon") is None


async def test_unknown_patient_is_read_by_id(http_server_factory, state, tmp_path):
    base = await http_server_factory(fhir_app(state))
    async with aiohttp.ClientSession() as session:
        sync = FhirRestSync(
            session=session,
            base_url=f"{base}/fhir",
            token_url=f"{base}/token",
            client_id="novamind",
            client_secret="s3cret",
            cursor_path=tmp_path / "c.json",
            resource_types=("Observation",),
        )
        observations = [r async for r in sync.resources()]
        found = await sync.patient("Patient/r1")
        missing = await sync.patient("Patient/nobody")
        not_a_patient = await sync.patient("Group/g1")
    assert state["token_calls"][0]["scope"] == "system/Observation.read system/Patient.read"
    assert found is not None and found.data == PATIENT and missing is None and not_a_patient is None
    asked = []

    def fetch(reference):
        asked.append(reference)
        return found if reference == "Patient/r1" else None

    mapper = FhirMapper(key=PSEUDONYM_KEY, as_of=date(2024, 6, 1), fetch_patient=fetch)
    out = list(mapper.map_resources(observations))
    assert asked == ["Patient/r1"]  # once per unknown subject, not per resource
    assert [t for _, t, _ in out].count("ClinicalEvent") == 3 and mapper.summary.parked == 0
    assert mapper.summary.read == 4 and mapper.summary.balanced  # the fetched Patient is read too
