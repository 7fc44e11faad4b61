"""What the extraction audit of a job says: scopes packed into details of at most 128 characters."""

from __future__ import annotations

from connectors.jobs.audit import scope_details
from connectors.jobs.fhir import FILE_SCOPES
from connectors.jobs.wearables import APPLE_HEALTH_SCOPES


def test_scopes_are_packed_into_audit_details_of_at_most_128_characters():
    scopes = " ".join(
        f"system/{t}.read"
        for t in (
            "Patient",
            "Observation",
            "Condition",
            "Encounter",
            "MedicationRequest",
            "MedicationStatement",
        )
    )
    details = scope_details(scopes)
    assert list(details) == ["scopes", "scopes_2"]
    assert all(len(v) <= 128 for v in details.values())
    assert " ".join(details.values()) == scopes
    assert scope_details("activity heartrate sleep") == {"scopes": "activity heartrate sleep"}


def test_every_job_scope_fits_the_audit_details():
    for scopes in (FILE_SCOPES, APPLE_HEALTH_SCOPES):
        details = scope_details(scopes)
        assert " ".join(details.values()) == scopes and all(len(v) <= 128 for v in details.values())
    assert "HeartRate" in APPLE_HEALTH_SCOPES.split() and "SleepAnalysis" in APPLE_HEALTH_SCOPES.split()
