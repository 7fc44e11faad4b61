"""The submission ledger's protocol as the handler uses it: claim, acknowledge, release."""

from __future__ import annotations

import datetime as dt
from typing import Any

from connectors.intake.idempotency import Acknowledged, Key, MemorySubmissionLedger, submission_event_id
from schemas.models import AuditOutcome
from tests.connectors.intake.conftest import PATIENT_A, FakeProducer, symptom_body


class BrokenLedger(MemorySubmissionLedger):
    async def claim(self, key: Key, fingerprint: str, now: dt.datetime) -> Acknowledged | None:
        raise ConnectionError("mongodb unreachable")


async def test_a_failed_delivery_leaves_no_claim(intake_factory: Any) -> None:
    intake = await intake_factory(producer=FakeProducer(fail=True))
    assert (await intake.post("symptom-reports", symptom_body())).status == 503
    intake.producer.fail = False
    changed = await intake.post("symptom-reports", symptom_body(severity=2))  # not a conflict
    assert changed.status == 201


async def test_a_pending_claim_with_the_same_body_is_taken_over(intake_factory: Any) -> None:
    ledger = MemorySubmissionLedger(capacity=10)
    intake = await intake_factory(ledger=ledger)
    first = await intake.post("symptom-reports", symptom_body())
    key = (PATIENT_A, "sub-1")
    entry = ledger.get(key)
    assert entry is not None and entry.response == await first.json()
    ledger.put(key, Acknowledged(entry.fingerprint, None))  # as if the replica died mid-delivery
    retry = await intake.post("symptom-reports", symptom_body())
    assert retry.status == 201 and (await retry.json())["event_id"] == submission_event_id(PATIENT_A, "sub-1")
    assert (await intake.post("symptom-reports", symptom_body(severity=1))).status == 409


async def test_an_unreachable_ledger_is_503_and_nothing_is_produced(intake_factory: Any) -> None:
    intake = await intake_factory(ledger=BrokenLedger(capacity=1))
    resp = await intake.post("symptom-reports", symptom_body())
    assert resp.status == 503 and "Retry-After" in resp.headers
    assert intake.producer.sent == []
    [audit] = intake.audit.events
    assert (audit.outcome, audit.details["reason"]) == (AuditOutcome.DENIED, "ledger_unavailable")


def test_retention_covers_the_horizon() -> None:
    from connectors.intake import IntakeSettings

    assert IntakeSettings().idempotency_retention(30) == dt.timedelta(days=31)
    assert IntakeSettings(idempotency_retention_days=7).idempotency_retention(30) == dt.timedelta(days=31)
    assert IntakeSettings(idempotency_retention_days=90).idempotency_retention(30) == dt.timedelta(days=90)
    assert IntakeSettings(horizon_days=62).idempotency_retention(30) == dt.timedelta(days=63)
