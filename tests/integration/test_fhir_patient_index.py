"""The FHIR patient index and parked resources in the real MongoDB-compatible server."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from connectors.ehr import FhirMapper
from connectors.ehr.patients import INDEX_COLLECTION, PARKED_COLLECTION, MongoPatientIndex
from connectors.ehr.reader import RawResource
from novamind.platform.mongo import database, mongo_client
from novamind.platform.privacy.fieldcrypt import FieldCipher
from novamind.platform.settings import Settings

KEY = b"integration-pseudonym-key-0123456789"
PATIENT = {
    "resourceType": "Patient",
    "id": "pi-1",
    "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-PI-1"}],
}
NOTE = "feels hopeless since the divorce"
HR = {
    "resourceType": "Observation",
    "id": "hr-1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "subject": {"reference": "Patient/pi-1", "display": "Robin Example"},
    "effectiveDateTime": "2024-05-01T08:00:00Z",
    "valueQuantity": {"value": 70, "unit": "/min", "code": "/min"},
    "note": [{"text": NOTE}],
}


@pytest.fixture
def mongo(settings: Settings) -> Iterator[tuple[asyncio.AbstractEventLoop, Any]]:
    loop = asyncio.new_event_loop()
    client = mongo_client(settings.mongo, app_name="test-fhir-index")
    name = f"{database(client, settings.mongo).name}_{uuid.uuid4().hex[:6]}"
    yield loop, client[name]
    loop.run_until_complete(client.drop_database(name))
    loop.run_until_complete(client.close())
    loop.close()


def run(index: MongoPatientIndex, *resources: dict[str, Any]) -> tuple[FhirMapper, list[Any]]:
    mapper = FhirMapper(
        key=KEY, as_of=date(2024, 6, 1), received_time=datetime(2024, 6, 1, tzinfo=UTC), patients=index
    )
    out = list(mapper.map_resources(RawResource(f"in#{i}", r) for i, r in enumerate(resources)))
    assert mapper.summary.balanced
    return mapper, out


@pytest.mark.parametrize("encrypted", [True, False])
def test_parked_until_the_patient_arrives_then_forgotten_on_commit(mongo, encrypted):
    loop, db = mongo
    cipher = FieldCipher({"k1": os.urandom(32)}, "k1") if encrypted else None

    def index() -> MongoPatientIndex:
        ix = MongoPatientIndex(db=db, loop=loop, key=KEY, source="fhir:test", cipher=cipher)
        ix.ensure_indexes()
        return ix

    first, out = run(index(), HR)
    assert out == [] and first.summary.parked == 1
    [doc] = loop.run_until_complete(db[PARKED_COLLECTION].find({}).to_list(None))
    stored = json.dumps(doc, default=str)
    assert doc["encrypted"] is encrypted
    assert "Robin" not in stored and NOTE not in stored  # encrypted, or scrubbed of free text
    assert ("Patient/pi-1" in stored) is not encrypted  # logical ids only in the clear copy

    ix = index()
    second, out = run(ix, PATIENT)
    assert [t for _, t, _ in out] == ["Demographics", "ClinicalEvent"]
    assert (second.summary.read, second.summary.unparked, second.summary.mapped) == (1, 1, 2)
    # not yet acknowledged: still stored, so a failed run applies it again
    assert loop.run_until_complete(db[PARKED_COLLECTION].count_documents({})) == 1
    ix.commit()
    assert loop.run_until_complete(db[PARKED_COLLECTION].count_documents({})) == 0

    [entry] = loop.run_until_complete(db[INDEX_COLLECTION].find({}).to_list(None))
    assert entry["basis"] == "identifier" and "pi-1" not in entry["_id"]
    third, out = run(index(), dict(HR, id="hr-2"))  # a later call: resolved from the index
    assert [p for p, _, _ in out] == [entry["pseudonym"]] and third.summary.parked == 0


def test_a_token_naming_a_fhir_patient_id_resolves_through_the_index(mongo):
    """A JWT whose ``patient`` claim is the EHR's Patient id speaks for the pseudonym the FHIR
    connector recorded for that Patient (same keyed hash, same source); an unknown id, none."""
    from novamind.platform.auth.keys import JwksKeys, usable_keys
    from novamind.platform.auth.tokens import JwtVerifier, PatientIndex
    from novamind.platform.privacy.patient_index import MongoPatientLookup
    from tests.novamind.platform.auth.factories import AUDIENCE, ISSUER, TestIdentityProvider

    loop, db = mongo
    ix = MongoPatientIndex(db=db, loop=loop, key=KEY, source="fhir:test")
    ix.ensure_indexes()
    mapper, _ = run(ix, PATIENT)
    ix.flush()
    pseudonym = ix.lookup("Patient/pi-1")
    assert pseudonym is not None and pseudonym.startswith("p_")

    idp = TestIdentityProvider()
    lookup = MongoPatientLookup(db=db, key=KEY, source="fhir:test")
    verifier = JwtVerifier(
        keys=JwksKeys(usable_keys(idp.jwks())),
        issuer=ISSUER,
        audience=AUDIENCE,
        patients=PatientIndex(lookup=lookup),
    )
    known = loop.run_until_complete(verifier.authenticate(idp.token(patient="pi-1")))
    unknown = loop.run_until_complete(verifier.authenticate(idp.token(patient="pi-404")))
    elsewhere = MongoPatientLookup(db=db, key=KEY, source="fhir:other")
    assert known.patient_id == pseudonym
    assert unknown.patient_id is None
    assert loop.run_until_complete(elsewhere("Patient/pi-1")) is None  # the source is part of the key
