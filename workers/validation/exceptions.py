"""Typed validation errors; ``error_class`` is the name written into dead letters.

They are returned (not raised) on the hot path; callers may raise them.
"""

from __future__ import annotations


class ValidationError(Exception):
    """Root of every worker validation error: a field path and a precise reason."""

    hard = True  # hard-invalid: the caller dead-letters it

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    @property
    def error_class(self) -> str:
        return type(self).__name__


class MissingField(ValidationError):
    """A required field is absent or null."""


class InvalidType(ValidationError):
    """A field has the wrong type or an unparseable format."""


class UnknownCode(ValidationError):
    """An enum symbol or code is not one the workers know."""


class OutOfRange(ValidationError):
    """A value lies outside its physiological or instrument range."""


class UnitMismatch(ValidationError):
    """The unit is not the one expected for the metric."""


class Inconsistent(ValidationError):
    """Fields contradict each other (e.g. total != sum of items)."""


class FutureTimestamp(ValidationError):
    """event_time is later than now + the allowed clock skew."""


class LateEvent(ValidationError):
    """event_time is further behind the patient's watermark than the lateness horizon."""


class Duplicate(ValidationError):
    """The event_id was already folded in (dropped, not dead-lettered)."""

    hard = False
