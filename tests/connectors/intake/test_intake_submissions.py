"""Accepted submissions: records on the wire, ack before answer, scoring, 503, idempotency."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connectors.intake.idempotency import submission_event_id
from novamind.platform.privacy.exceptions import DecryptionFailed
from schemas.models import AssessmentResult, Band, SymptomReport
from tests.connectors.intake.conftest import (
    PATIENT_A,
    TOPIC,
    FakeProducer,
    Intake,
    assessment_body,
    decrypt_notes,
    symptom_body,
)

NOTES = "could not sleep, worried about my sister"


async def test_symptom_report_is_produced_with_notes_encrypted(intake: Intake) -> None:
    resp = await intake.post("symptom-reports", symptom_body())

    assert resp.status == 201
    body = await resp.json()
    assert body == {"event_id": submission_event_id(PATIENT_A, "sub-1"), "submission_id": "sub-1"}
    [sent] = intake.producer.sent
    assert (sent.topic, sent.key) == (TOPIC, PATIENT_A.encode())
    assert NOTES.encode() not in sent.value and b"sister" not in sent.value
    record = intake.codec.decode(sent.value)
    assert isinstance(record, SymptomReport)
    assert record.event_id == body["event_id"]
    assert (record.patient_id, record.source, record.severity) == (PATIENT_A, "intake", 6)
    assert record.event_time.isoformat() == "2026-03-02T10:30:00+00:00"
    assert (record.context, record.triggers) == ("work", ["deadline"])
    assert record.notes is not None and decrypt_notes(record.notes, PATIENT_A) == NOTES


async def test_answer_waits_for_the_kafka_ack(intake_factory: Any) -> None:
    gate = asyncio.Event()
    intake = await intake_factory(producer=FakeProducer(gate=gate))
    request = asyncio.create_task(intake.post("symptom-reports", symptom_body()))
    while intake.producer.pending == 0:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    assert not request.done()  # delivered but unacknowledged: no answer yet
    gate.set()
    resp = await request
    assert resp.status == 201 and len(intake.producer.sent) == 1


async def test_unacknowledged_delivery_is_503_and_nothing_is_claimed(intake_factory: Any) -> None:
    intake = await intake_factory(producer=FakeProducer(fail=True), retry_after_s=7)
    resp = await intake.post("symptom-reports", symptom_body())

    assert resp.status == 503
    assert resp.headers["Retry-After"] == "7"
    body = await resp.json()
    assert body["errors"][0]["type"] == "unavailable" and "event_id" not in body
    intake.producer.fail = False  # the broker is back: the retry is a first acceptance
    retry = await intake.post("symptom-reports", symptom_body())
    assert retry.status == 201
    assert (await retry.json())["event_id"] == submission_event_id(PATIENT_A, "sub-1")


def _items(instrument: str, total: int, item9: int = 0) -> list[int]:
    count = 9 if instrument == "PHQ9" else 7
    items = [0] * count
    remaining = total - item9
    if instrument == "PHQ9":
        items[8] = item9
    for i in range(count - (1 if instrument == "PHQ9" else 0)):
        items[i] = min(3, remaining)
        remaining -= items[i]
    if remaining:  # totals above 24 need item 9 as well
        items[8] += remaining
    assert sum(items) == total
    return items


@pytest.mark.parametrize(
    ("instrument", "total", "band"),
    [
        ("PHQ9", 0, Band.MINIMAL),
        ("PHQ9", 4, Band.MINIMAL),
        ("PHQ9", 5, Band.MILD),
        ("PHQ9", 9, Band.MILD),
        ("PHQ9", 10, Band.MODERATE),
        ("PHQ9", 14, Band.MODERATE),
        ("PHQ9", 15, Band.MODERATELY_SEVERE),
        ("PHQ9", 19, Band.MODERATELY_SEVERE),
        ("PHQ9", 20, Band.SEVERE),
        ("PHQ9", 24, Band.SEVERE),
        ("GAD7", 0, Band.MINIMAL),
        ("GAD7", 4, Band.MINIMAL),
        ("GAD7", 5, Band.MILD),
        ("GAD7", 9, Band.MILD),
        ("GAD7", 10, Band.MODERATE),
        ("GAD7", 14, Band.MODERATE),
        ("GAD7", 15, Band.SEVERE),
        ("GAD7", 21, Band.SEVERE),
    ],
)
async def test_assessment_bands_at_boundaries(
    intake: Intake, instrument: str, total: int, band: Band
) -> None:
    items = _items(instrument, total)
    resp = await intake.post("assessments", assessment_body(instrument=instrument, item_responses=items))

    assert resp.status == 201
    body = await resp.json()
    assert (body["total"], body["band"], body["item9_positive"]) == (total, band.value, False)
    assert body["loinc_total"] == ("44261-6" if instrument == "PHQ9" else "70274-6")
    record = intake.codec.decode(intake.producer.sent[0].value)
    assert isinstance(record, AssessmentResult)
    assert (record.total, record.band, record.item_responses) == (total, band, items)
    assert record.event_id == body["event_id"] and record.submission_id == "as-1"


async def test_phq9_maximum_and_item9_flag(intake: Intake) -> None:
    resp = await intake.post("assessments", assessment_body(item_responses=[3] * 9))
    assert (await resp.json())["total"] == 27 and (await resp.json())["band"] == "SEVERE"

    low = await intake.post(
        "assessments", assessment_body(submission_id="as-2", item_responses=[0] * 8 + [1])
    )
    body = await low.json()
    assert (body["total"], body["band"], body["item9_positive"]) == (1, "MINIMAL", True)
    assert intake.codec.decode(intake.producer.sent[1].value).item9_positive is True  # type: ignore[attr-defined]


async def test_retry_is_answered_200_with_the_same_body_and_not_produced_again(
    intake: Intake,
) -> None:
    first = await intake.post("assessments", assessment_body())
    again = await intake.post("assessments", assessment_body())

    assert (first.status, again.status) == (201, 200)
    assert await first.json() == await again.json()
    assert len(intake.producer.sent) == 1


async def test_concurrent_duplicates_produce_once(intake_factory: Any) -> None:
    gate = asyncio.Event()
    intake = await intake_factory(producer=FakeProducer(gate=gate))
    requests = [asyncio.create_task(intake.post("symptom-reports", symptom_body())) for _ in range(3)]
    while intake.producer.pending == 0:
        await asyncio.sleep(0.005)
    gate.set()
    statuses = sorted([(await r).status for r in requests])
    assert statuses == [200, 200, 201] and len(intake.producer.sent) == 1


async def test_same_submission_id_with_another_body_is_409(intake: Intake) -> None:
    assert (await intake.post("symptom-reports", symptom_body())).status == 201
    changed = await intake.post("symptom-reports", symptom_body(severity=2))
    other_kind = await intake.post("assessments", assessment_body(submission_id="sub-1"))

    assert (changed.status, other_kind.status) == (409, 409)
    assert (await changed.json())["errors"][0]["path"] == "submission_id"
    assert len(intake.producer.sent) == 1


async def test_event_id_is_deterministic_across_replicas(intake_factory: Any) -> None:
    one, two = await intake_factory(), await intake_factory()
    first = await (await one.post("symptom-reports", symptom_body())).json()
    second_resp = await two.post("symptom-reports", symptom_body())

    assert second_resp.status == 201  # the other replica has not seen it: produces again...
    assert (await second_resp.json())["event_id"] == first["event_id"]  # ...under the same id
    ids = {one.codec.decode(s.value).event_id for s in one.producer.sent + two.producer.sent}
    assert ids == {first["event_id"]}


async def test_notes_are_bound_to_their_patient(intake: Intake) -> None:
    await intake.post("symptom-reports", symptom_body())
    record = intake.codec.decode(intake.producer.sent[0].value)
    assert isinstance(record, SymptomReport) and record.notes is not None
    with pytest.raises(DecryptionFailed):  # copied into another patient's record: unreadable
        decrypt_notes(record.notes, "p_" + "ff" * 16)
