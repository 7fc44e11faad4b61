"""Intake errors: one root under ``ConnectorError``, one line each."""

from __future__ import annotations

from connectors.exceptions import ConnectorError


class IntakeError(ConnectorError):
    """Root of every intake error."""


class TokenStoreError(IntakeError):
    """The token file is missing or malformed."""
