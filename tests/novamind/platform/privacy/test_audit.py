"""Pure parts of the audit log and the re-identification policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from novamind.platform.privacy.audit import AuditQuery, check_details, from_document, to_document
from novamind.platform.privacy.exceptions import PhiInAuditDetails
from novamind.platform.privacy.reidentification import Identity, ReidentificationPolicy
from novamind.platform.settings import SecuritySettings
from schemas.models import AuditAction, AuditEvent, AuditOutcome

ALICE = "p_" + "a" * 32
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def event_factory(**overrides: object) -> AuditEvent:
    fields: dict[str, object] = {
        "event_id": "e-1",
        "event_time": T0,
        "actor": "intake",
        "action": AuditAction.COLLECT,
        "patient_id": ALICE,
        "purpose": "TREATMENT",
        "resource": "topic:patient-reports",
        "outcome": AuditOutcome.ALLOWED,
        "details": {"records": "3"},
    }
    fields.update(overrides)
    return AuditEvent.model_validate(fields)


@pytest.mark.parametrize(
    "details",
    [
        {"patient_name": "x"},
        {"MRN": "123"},
        {"dob": "1990-01-01"},
        {"notes": "x"},
        {"free-text": "x"},
        {"email": "x"},
        {"home.address": "x"},
        {"comment": "fine"},
        {"reason": "x" * 129},
        {"contact": "jane@example.org"},
    ],
)
def test_details_that_may_carry_phi_are_refused(details: dict[str, str]) -> None:
    with pytest.raises(PhiInAuditDetails):
        check_details(details)


def test_codes_and_counts_are_fine() -> None:
    details = {
        "records": "12",
        "topic": "twin-updates",
        "reason": "actor_not_allowed",
        "key_id": "2026-01",
        "os_user": "ops",
    }
    assert check_details(details) == details


def test_document_round_trip_keeps_every_field() -> None:
    event = event_factory()
    document = to_document(event)
    assert document["_id"] == document["event_id"] == "e-1"
    assert document["action"] == "COLLECT" and type(document["action"]) is str
    assert from_document(document) == event


def test_naive_times_from_the_store_are_read_as_utc() -> None:
    document = to_document(event_factory())
    document["event_time"] = T0.replace(tzinfo=None)
    assert from_document(document).event_time == T0


def test_query_filter_has_only_given_fields() -> None:
    assert AuditQuery().to_filter() == {}
    until = T0 + timedelta(days=1)
    query = AuditQuery(
        patient_id=ALICE,
        actor="intake",
        purpose="TREATMENT",
        action=AuditAction.REIDENTIFY,
        outcome=AuditOutcome.DENIED,
        since=T0,
        until=until,
    )
    assert query.to_filter() == {
        "patient_id": ALICE,
        "actor": "intake",
        "purpose": "TREATMENT",
        "action": "REIDENTIFY",
        "outcome": "DENIED",
        "event_time": {"$gte": T0, "$lt": until},
    }


def test_policy_allows_only_listed_actors_and_purposes() -> None:
    policy = ReidentificationPolicy(allowed_actors=frozenset({"dr-house"}))
    assert policy.denial(actor="dr-house", purpose="TREATMENT") is None
    assert policy.denial(actor="dr-house", purpose="PATIENT_SAFETY") is None
    assert policy.denial(actor="dr-house", purpose="RESEARCH") == "purpose_not_allowed"
    assert policy.denial(actor="intern", purpose="TREATMENT") == "actor_not_allowed"


def test_policy_from_settings_fails_closed() -> None:
    policy = ReidentificationPolicy.from_settings(SecuritySettings())
    assert policy.allowed_actors == frozenset()
    assert policy.denial(actor="admin", purpose="TREATMENT") == "actor_not_allowed"


def test_identity_repr_hides_identifiers() -> None:
    identity = Identity(system="urn:oid:1.2.3", mrn="MRN-0042")
    assert "MRN-0042" not in repr(identity) and "1.2.3" not in repr(identity)
