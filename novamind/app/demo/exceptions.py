"""Errors of the demo run."""


class DemoError(Exception):
    """The demo cannot go on; the message says why and where to look."""


class DemoInterrupted(DemoError):
    """Ctrl-C or SIGTERM: the demo stops its processes and exits."""
