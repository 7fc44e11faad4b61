"""What the pipeline would throw away is refused at the door, and each token's rate is bounded."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.intake.ratelimit import RateLimiter, retry_after
from schemas.models import AuditOutcome
from tests.connectors.intake.conftest import PATIENT_B, TOKEN_B, Intake, assessment_body, symptom_body

# NOW is 2026-03-02T12:00Z; with 30 days' lateness and 300 s skew the horizon is 2026-01-31T12:05Z.


@pytest.mark.parametrize(
    ("event_time", "status"),
    [
        ("1900-01-01T00:00:00Z", 422),
        ("2026-01-31T12:04:59Z", 422),
        ("2026-01-31T12:05:00Z", 201),
        ("2026-02-15T08:00:00+01:00", 201),
    ],
)
async def test_event_times_beyond_the_lateness_horizon_are_422(
    intake: Intake, event_time: str, status: int
) -> None:
    resp = await intake.post("symptom-reports", symptom_body(event_time=event_time))

    assert resp.status == status, await resp.text()
    if status == 422:
        [error] = (await resp.json())["errors"]
        assert (error["path"], error["type"]) == ("event_time", "too_old")
        assert "30 days" in error["message"]
        assert intake.producer.sent == []
        [audit] = intake.audit.events
        assert (audit.outcome, audit.details["reason"]) == (AuditOutcome.DENIED, "invalid")


def test_the_default_horizon_is_the_workers_lateness_default() -> None:
    from connectors.intake.app import DEFAULT_LATENESS_DAYS
    from novamind.platform.settings import WorkerSettings

    assert DEFAULT_LATENESS_DAYS == WorkerSettings().lateness_days == 30


async def test_a_shorter_worker_lateness_narrows_the_intake(intake_factory: Any) -> None:
    intake = await intake_factory(lateness_days=7)
    old = await intake.post("assessments", assessment_body(event_time="2026-02-20T00:00:00Z"))
    assert old.status == 422
    [error] = (await old.json())["errors"]
    assert error["path"] == "event_time" and "7 days" in error["message"]
    replay = await intake_factory(lateness_days=7, horizon_days=90)  # the demo replays history
    replayed = await replay.post("assessments", assessment_body(event_time="2026-01-01T00:00:00Z"))
    assert replayed.status == 201


async def test_each_token_is_rate_limited_with_retry_after(intake_factory: Any) -> None:
    intake = await intake_factory(rate_limit_per_minute=1, rate_limit_burst=2)
    answers = [
        await intake.post("symptom-reports", symptom_body(submission_id=f"s-{i}")) for i in range(3)
    ]
    assert [a.status for a in answers] == [201, 201, 429]
    assert answers[2].headers["Retry-After"] == "60"
    assert (await answers[2].json())["errors"][0]["type"] == "rate_limited"
    other = await intake.post("symptom-reports", symptom_body(), token=TOKEN_B, patient=PATIENT_B)
    assert other.status == 201  # another token has its own bucket
    assert len(intake.producer.sent) == 3
    limited = intake.audit.events[2]
    assert (limited.outcome, limited.details["reason"], limited.details["status"], limited.actor) == (
        AuditOutcome.DENIED, "rate_limited", "429", "app-a"
    )


def test_token_bucket_refills_and_stays_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=30, burst=2, monotonic=lambda: now[0], max_keys=3)
    assert [limiter.acquire("t") for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire("t") == pytest.approx(2.0)  # one request per 2 s
    now[0] += 1.0
    assert limiter.acquire("t") == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.acquire("t") == 0.0
    for i in range(10):
        limiter.acquire(f"other-{i}")
    assert len(limiter) <= 3
    assert all(len(key) == 64 and "other" not in key for key in limiter._buckets)  # digests only
    assert RateLimiter(per_minute=0, burst=1).acquire("t") == 0.0
    assert retry_after(0.2) == "1" and retry_after(59.1) == "60"


async def test_a_late_retry_of_an_accepted_submission_is_still_200(intake_factory: Any) -> None:
    import datetime as dt

    from tests.connectors.intake.conftest import NOW

    now = [NOW]
    intake = await intake_factory(clock=lambda: now[0])
    body = symptom_body(event_time="2026-02-01T09:00:00Z")  # 29 days old: accepted
    first = await intake.post("symptom-reports", body)
    assert first.status == 201
    now[0] = NOW + dt.timedelta(days=5)  # the app retries after five days offline

    retry = await intake.post("symptom-reports", body)
    assert retry.status == 200 and await retry.json() == await first.json()
    changed = await intake.post("symptom-reports", {**body, "severity": 1})
    assert changed.status == 422  # not a retry: the old time is refused as for anyone
    fresh = await intake.post("symptom-reports", {**body, "submission_id": "never-seen"})
    assert fresh.status == 422
    assert len(intake.producer.sent) == 1
    reasons = [e.details["reason"] for e in intake.audit.events]
    assert reasons == ["accepted", "replayed", "invalid", "invalid"]
