"""Errors of the twin core."""


class TwinError(Exception):
    """Root of twin errors."""


class StateDecodeError(TwinError):
    """Serialized twin state is corrupt, tampered with or of an unknown format."""


class UnknownModelVersion(TwinError):
    """A model version name or id this build does not know, or a malformed version."""


class VersionOperationError(TwinError):
    """An operator's promotion or rollback cannot be done as asked (no shadow, no snapshot...)."""
