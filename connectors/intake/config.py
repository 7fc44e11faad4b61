"""Intake settings (``NOVAMIND_INTAKE__*``): a frozen section meant to nest in ``Settings``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import TopicName


class IntakeSettings(BaseSettings):
    """How the patient-reporting intake listens, where it produces and what it accepts."""

    def horizon(self, lateness_days: int) -> dt.timedelta:
        """How old an event time may be: ``horizon_days``, else the workers' lateness."""
        return dt.timedelta(days=self.horizon_days or lateness_days)

    def idempotency_retention(self, lateness_days: int) -> dt.timedelta:
        """How long submission ids are kept: never shorter than the horizon plus a day."""
        floor = self.horizon(lateness_days) + dt.timedelta(days=1)
        return max(floor, dt.timedelta(days=self.idempotency_retention_days or 0))

    model_config = SettingsConfigDict(env_prefix="NOVAMIND_INTAKE__", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    topic: str = TopicName.PATIENT_REPORTS
    tokens_file: Path | None = Field(
        default=None, description="JSON object: sha256(token) hex -> patient pseudonym"
    )
    max_clock_skew_s: float = Field(default=300.0, ge=0, description="event_time may lead by this")
    delivery_timeout_s: float = Field(default=10.0, gt=0, description="wait for Kafka's ack")
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After of a 503")
    horizon_days: int | None = Field(
        default=None,
        ge=1,
        description="event_time older than this is refused with 422; default (and production): the "
        "workers' NOVAMIND_WORKER__LATENESS_DAYS. Set only to replay history (the demo).",
    )
    rate_limit_per_minute: float = Field(
        default=60.0, ge=0, description="sustained requests per bearer token per minute; 0: no limit"
    )
    rate_limit_burst: int = Field(default=60, ge=1, description="requests a token may make at once")
    idempotency_cache_size: int = Field(
        default=10_000, ge=1, description="entries of the in-memory ledger (tests, development)"
    )
    idempotency_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="submission ids are kept in MongoDB this long; default and minimum: the horizon + 1",
    )
    idempotency_prune_interval_s: float = Field(default=3600.0, gt=0, description="how often old ids go")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
