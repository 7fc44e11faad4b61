"""Errors of the application layer that the user can fix (the CLI prints them without a traceback).

Kept apart from :mod:`novamind.app.localservices`, which imports the Kafka and MongoDB clients:
``novamind --help`` imports this module, not those clients.
"""


class ServiceError(RuntimeError):
    """A local service could not be prepared or started; the message says what to do."""
