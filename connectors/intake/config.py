"""Intake settings (``NOVAMIND_INTAKE__*``): a frozen section meant to nest in ``Settings``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IntakeSettings(BaseSettings):
    """How the patient-reporting intake listens, where it produces and what it accepts."""

    model_config = SettingsConfigDict(env_prefix="NOVAMIND_INTAKE__", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    topic: str = "patient-reports"
    tokens_file: Path | None = Field(
        default=None, description="JSON object: sha256(token) hex -> patient pseudonym"
    )
    max_clock_skew_s: float = Field(default=300.0, ge=0, description="event_time may lead by this")
    delivery_timeout_s: float = Field(default=10.0, gt=0, description="wait for Kafka's ack")
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After of a 503")
    idempotency_cache_size: int = Field(default=10_000, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
