"""Errors of the application surface that the user can fix (printed without a traceback)."""


class UsageError(Exception):
    """A problem with the user's input or environment, printed without a traceback."""


class MissingExtra(UsageError):
    """A feature needs an optional extra that is not installed."""
