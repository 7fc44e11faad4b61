"""The identity provider's signing keys (JWKS), from a file or a URL, RS256/ES256 only.

A URL is refetched every ``refresh_s``; a token naming an unknown ``kid`` refetches at most
once per ``min_refresh_s`` (so made-up kids cannot turn the service into a JWKS flood). The
fetch is blocking urllib (PyJWT's client), run in a thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import structlog
from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientError, PyJWTError

from novamind.platform.auth.exceptions import KeySetError

log = structlog.get_logger(__name__)
ALGORITHMS = ("RS256", "ES256")
_PRIVATE_PARAMS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})


def usable_keys(jwks: object) -> dict[str, PyJWK]:
    """Public RS256/ES256 signing keys by ``kid``; anything else is left out.

    A JWKS carrying private or symmetric key material is refused outright: it is a leak at
    the identity provider, and a symmetric key would invite HS256 forgeries.
    """
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise KeySetError("a JWKS must be a JSON object with a 'keys' list")
    found: dict[str, PyJWK] = {}
    for raw in jwks["keys"]:
        if not isinstance(raw, dict):
            continue
        if _PRIVATE_PARAMS & raw.keys():
            raise KeySetError("the JWKS holds private or symmetric key material")
        kid = raw.get("kid")
        if not isinstance(kid, str) or not kid or raw.get("use", "sig") != "sig":
            continue
        try:
            key = PyJWK.from_dict(raw)
        except PyJWTError:
            continue
        if key.algorithm_name in ALGORITHMS:
            found[kid] = key
    if not found:
        raise KeySetError("the JWKS holds no RS256 or ES256 signing key with a kid")
    return found


class JwksKeys:
    """Signing keys by ``kid``; ``fetch`` (optional) returns a fresh JWKS document."""

    def __init__(
        self,
        keys: dict[str, PyJWK],
        *,
        fetch: Callable[[], object] | None = None,
        refresh_s: float = 3600.0,
        min_refresh_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = dict(keys)
        self._fetch = fetch
        self._refresh_s = refresh_s
        self._min_refresh_s = min_refresh_s
        self._monotonic = monotonic
        self._fetched_at = monotonic()
        self._lock = asyncio.Lock()

    @classmethod
    def from_file(cls, path: Path) -> JwksKeys:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise KeySetError(f"cannot read JWKS file {path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise KeySetError(f"JWKS file {path} is not JSON: {exc}") from exc
        return cls(usable_keys(document))

    @classmethod
    def from_url(
        cls, url: str, *, refresh_s: float = 3600.0, min_refresh_s: float = 60.0, timeout_s: float = 10.0
    ) -> JwksKeys:
        """Fetch the keys now (a provider that cannot be reached at start is an error)."""
        client = PyJWKClient(url, cache_jwk_set=False, cache_keys=False, timeout=int(timeout_s))

        def fetch() -> Any:
            try:
                return client.fetch_data()
            except (PyJWKClientError, ValueError) as exc:  # unreachable, or not JSON
                raise KeySetError(f"cannot fetch the JWKS: {exc}") from exc

        return cls(usable_keys(fetch()), fetch=fetch, refresh_s=refresh_s, min_refresh_s=min_refresh_s)

    @property
    def kids(self) -> Iterable[str]:
        return tuple(self._keys)

    async def get(self, kid: str) -> PyJWK | None:
        """The key of ``kid``; refetches first when the keys are stale or ``kid`` is unknown."""
        age = self._monotonic() - self._fetched_at
        stale = age >= self._refresh_s
        if self._fetch is not None and (stale or (kid not in self._keys and age >= self._min_refresh_s)):
            seen = self._fetched_at
            async with self._lock:
                if self._fetched_at == seen:  # nobody refetched while we waited
                    await self._refetch()
        return self._keys.get(kid)

    async def _refetch(self) -> None:
        assert self._fetch is not None
        self._fetched_at = self._monotonic()  # also on failure: no retry storm
        try:
            self._keys = usable_keys(await asyncio.to_thread(self._fetch))
        except KeySetError as exc:  # keep the keys we have; the next refresh tries again
            log.warning("jwks_refresh_failed", error=str(exc))
