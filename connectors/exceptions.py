"""Connector errors: one root, one line each."""

from __future__ import annotations

import re
from collections.abc import Callable


class ConnectorError(Exception):
    """Root of every connector error."""


class AdapterError(ConnectorError):
    """A vendor file or payload is malformed; ``path``: JSON path or file, ``line``: XML line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        where = "".join(
            part for part in (f" at {path}" if path else "", f" line {line}" if line else "")
        )
        super().__init__(f"{message}{where}")


class PseudonymKeyError(ConnectorError):
    """The pseudonymisation key is missing or too short."""


class DeviceNotLinked(ConnectorError):
    """A sync was asked for a device that is not linked to the patient."""


class TokenError(ConnectorError):
    """An OAuth token is missing, undecryptable or cannot be refreshed."""


class SyncError(ConnectorError):
    """A remote API kept failing after the allowed retries."""


class FhirMappingError(ConnectorError):
    """A FHIR resource cannot be mapped (missing subject, bad value, unknown code)."""


class HttpStatusError(SyncError):
    """A remote API answered with a non-retryable HTTP status."""

    def __init__(self, status: int, url: str) -> None:
        self.status = status
        super().__init__(f"HTTP {status} from {url}")


class FhirSkip(ConnectorError):
    """A FHIR resource is deliberately not mapped; the message is the summary's skip reason."""


class PatientIndexError(ConnectorError):
    """The FHIR patient index or its parked resources could not be read or written."""


class JobArgumentError(ConnectorError):
    """A connector job was given a bad or missing argument.

    The message puts argument names in backticks (`base_url`); :meth:`spelled` names them
    the way a front end does (``--base-url`` on the command line).
    """

    def spelled(self, spell: Callable[[str], str]) -> str:
        return re.sub(r"`(\w+)`", lambda m: spell(m.group(1)), str(self))


class FieldKeyError(ConnectorError):
    """Field-encryption keys are configured but cannot be loaded."""


class StoreUnavailable(ConnectorError):
    """A store a connector job needs before it sends anything (audit log, patient index) is down."""
