"""Errors of the auth package, under one root; ``reason`` is a short code for audit events."""

from __future__ import annotations


class AuthError(Exception):
    """Root of every error raised by ``novamind.platform.auth``."""


class KeySetError(AuthError):
    """The JWKS (file or URL) is missing, unreadable or holds no usable key."""


class InvalidToken(AuthError):
    """The token does not authenticate anyone (HTTP 401); ``reason`` names why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Forbidden(AuthError):
    """The token is valid but may not do this (HTTP 403); ``reason`` names why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
