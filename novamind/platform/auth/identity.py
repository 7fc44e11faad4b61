"""Who a token speaks for, and the one rule deciding what it may do to a patient's data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from novamind.platform.auth.exceptions import Forbidden
from novamind.platform.auth.scopes import Context, Permission, Scope


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller.

    ``principal_id`` names it in audit events (never an e-mail address or a name);
    ``patient_id`` is the pseudonym of the token's patient, ``None`` when it has none.
    """

    principal_id: str
    patient_id: str | None
    scopes: tuple[Scope, ...]


class Authenticator(Protocol):
    """Turns a presented bearer token into an :class:`Identity` or raises ``InvalidToken``."""

    async def authenticate(self, token: str) -> Identity: ...


def authorize(
    identity: Identity,
    *,
    patient_id: str,
    resource: str,
    permission: Permission,
    contexts: Iterable[Context] = ("patient", "user", "system"),
) -> Scope:
    """The scope that lets ``identity`` do this to ``patient_id``'s data, else :class:`Forbidden`.

    A ``patient/`` scope only reaches the patient of the token's ``patient`` claim; ``user/``
    and ``system/`` scopes reach any patient (the caller's own policy and the audit trail
    bound them). ``contexts`` narrows which kinds an endpoint accepts.
    """
    allowed = set(contexts)
    fitting = [s for s in identity.scopes if s.context in allowed and s.allows(resource, permission)]
    if not fitting:
        raise Forbidden("scope_denied")
    for scope in fitting:
        if scope.context != "patient" or identity.patient_id == patient_id:
            return scope
    raise Forbidden("patient_mismatch" if identity.patient_id else "no_patient")


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
