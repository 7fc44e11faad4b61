"""Patient-reporting intake: an HTTP service turning patients' submissions into Kafka events."""

from connectors.intake.app import create_intake_app
from connectors.intake.auth import HashedTokenStore, Principal, token_digest
from connectors.intake.config import IntakeSettings

__all__ = [
    "HashedTokenStore",
    "IntakeSettings",
    "Principal",
    "create_intake_app",
    "token_digest",
]
