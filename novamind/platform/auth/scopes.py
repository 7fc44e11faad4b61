"""SMART on FHIR scopes (v1 ``patient/Observation.write``, v2 ``patient/Observation.cr``).

A scope is ``<context>/<resource>.<permissions>``: context ``patient`` (only the patient of
the token's ``patient`` claim), ``user`` or ``system``; resource a FHIR type or ``*``;
permissions v1 ``read``/``write``/``*`` or v2 letters of ``cruds``. Scopes with a query
(``patient/Observation.rs?category=...``) narrow access in ways this service does not
evaluate, so they grant nothing here.

>>> Scope.parse("patient/*.read").allows("Observation", "r")
True
>>> Scope.parse("patient/Observation.read").allows("Observation", "c")
False
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Context = Literal["patient", "user", "system"]
Permission = Literal["c", "r", "u", "d", "s"]
_SCOPE = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.([a-z*]+)$")
_V1 = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset("cruds")}
_V2 = re.compile(r"^c?r?u?d?s?$")


@dataclass(frozen=True, slots=True)
class Scope:
    """One parsed resource scope."""

    context: Context
    resource: str
    permissions: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        """The scope, or ``None`` for anything else (``openid``, ``launch/patient``, queries)."""
        match = _SCOPE.match(text)
        if match is None:
            return None
        context, resource, perms = match.groups()
        if perms in _V1:
            granted = _V1[perms]
        elif perms and _V2.match(perms):
            granted = frozenset(perms)
        else:
            return None
        return cls(context, resource, granted)  # type: ignore[arg-type]

    def allows(self, resource: str, permission: Permission) -> bool:
        return self.resource in ("*", resource) and permission in self.permissions


def parse_scopes(claim: object) -> tuple[Scope, ...]:
    """Resource scopes of a ``scope`` (space-separated string) or ``scp`` (list) claim."""
    if isinstance(claim, str):
        words: Iterable[object] = claim.split()
    elif isinstance(claim, list | tuple):
        words = claim
    else:
        return ()
    parsed = (Scope.parse(w) for w in words if isinstance(w, str))
    return tuple(s for s in parsed if s is not None)
