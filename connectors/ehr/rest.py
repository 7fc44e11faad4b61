"""Incremental FHIR REST sync: ``_lastUpdated`` cursor per resource type, ``link[next]`` paging,
SMART backend-services style client-credentials token with only the needed ``system/*.read``
scopes, and 429/5xx retry honouring ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from connectors.ehr.reader import RawResource
from connectors.exceptions import HttpStatusError, SyncError, TokenError
from connectors.http import RetryPolicy, Sleep, request_json

DEFAULT_TYPES = ("Patient", "Observation", "Condition", "MedicationRequest",
                 "MedicationStatement", "Encounter")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def load_cursor(path: Path) -> dict[str, str]:
    """Read the per-type ``_lastUpdated`` cursor file (empty when missing)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise SyncError(f"cursor file {path} is not valid JSON") from exc
    return {str(k): str(v) for k, v in data.items()}


def save_cursor(path: Path, cursor: dict[str, str]) -> None:
    """Write the cursor atomically (temp file + rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(cursor, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


class FhirRestSync:
    """Pull resources changed since the last run from a FHIR R4 server.

    ``client_assertion`` (a signed JWT factory) selects SMART ``private_key_jwt``; without it
    the client secret is sent with HTTP Basic auth.
    """

    def __init__(self, *, session: aiohttp.ClientSession, base_url: str, token_url: str,
                 client_id: str, cursor_path: Path, client_secret: str | None = None,
                 client_assertion: Callable[[], str] | None = None,
                 resource_types: Sequence[str] = DEFAULT_TYPES, page_size: int = 200,
                 policy: RetryPolicy = RetryPolicy(), sleep: Sleep = asyncio.sleep) -> None:
        if client_secret is None and client_assertion is None:
            raise TokenError("either client_secret or client_assertion is required")
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.client_assertion = client_assertion
        self.resource_types = tuple(resource_types)
        self.cursor_path = cursor_path
        self.page_size = page_size
        self.policy = policy
        self.sleep = sleep
        self._token: tuple[str, float] | None = None

    @property
    def scopes(self) -> str:
        """Only the read scopes for the synced types, e.g. ``system/Patient.read`` (always
        with Patient: unknown subjects are read by id, :meth:`patient`)."""
        types = self.resource_types + (() if "Patient" in self.resource_types else ("Patient",))
        return " ".join(f"system/{t}.read" for t in types)

    async def token(self) -> str:
        """A cached access token, fetched again 30 s before it expires."""
        if self._token and self._token[1] > time.monotonic():
            return self._token[0]
        form = {"grant_type": "client_credentials", "scope": self.scopes}
        auth = None
        if self.client_assertion is not None:
            form |= {"client_assertion_type": JWT_BEARER,
                     "client_assertion": self.client_assertion(), "client_id": self.client_id}
        else:
            auth = aiohttp.BasicAuth(self.client_id, self.client_secret or "")
        try:
            body = await request_json(self.session, "POST", self.token_url, data=form, auth=auth,
                                      policy=self.policy, sleep=self.sleep)
        except HttpStatusError as exc:
            raise TokenError(f"token endpoint refused the client: HTTP {exc.status}") from exc
        if not isinstance(body, dict) or "access_token" not in body:
            raise TokenError("token response has no access_token")
        ttl = float(body.get("expires_in", 300))
        self._token = (str(body["access_token"]), time.monotonic() + max(0.0, ttl - 30))
        return self._token[0]

    async def _page(self, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {await self.token()}",
                       "Accept": "application/fhir+json"}
            try:
                body = await request_json(self.session, "GET", url, headers=headers,
                                          params=params, policy=self.policy, sleep=self.sleep)
            except HttpStatusError as exc:
                if exc.status != 401 or attempt:
                    raise
                self._token = None  # expired or revoked: fetch a new token once
                continue
            if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
                raise SyncError(f"{url} did not return a Bundle")
            return body
        raise SyncError(f"{url} kept answering 401")

    async def patient(self, reference: str) -> RawResource | None:
        """Read one Patient by reference (``Patient/<id>``); None when the server has none
        (404/410) or answers with something else."""
        logical_id = reference.removeprefix("Patient/")
        if not logical_id or "/" in logical_id or logical_id == reference:
            return None
        url = f"{self.base_url}/Patient/{logical_id}"
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {await self.token()}",
                       "Accept": "application/fhir+json"}
            try:
                body = await request_json(self.session, "GET", url, headers=headers,
                                          policy=self.policy, sleep=self.sleep)
            except HttpStatusError as exc:
                if exc.status == 401 and not attempt:
                    self._token = None
                    continue
                if exc.status in (404, 410):
                    return None
                raise
            if not isinstance(body, dict) or body.get("resourceType") != "Patient":
                return None
            return RawResource(f"{url}#Patient", body, url)
        return None

    async def resources(self) -> AsyncIterator[RawResource]:
        """Yield changed resources type by type; a type's cursor is saved once fully read."""
        cursor = load_cursor(self.cursor_path)
        for rtype in self.resource_types:
            params = {"_count": str(self.page_size), "_sort": "_lastUpdated"}
            if rtype in cursor:
                params["_lastUpdated"] = f"ge{cursor[rtype]}"
            url: str | None = f"{self.base_url}/{rtype}"
            newest = cursor.get(rtype)
            page_params: dict[str, str] | None = params
            while url:
                bundle = await self._page(url, page_params)
                for i, entry in enumerate(bundle.get("entry") or ()):
                    resource = entry.get("resource")
                    if not isinstance(resource, dict):
                        continue
                    updated = (resource.get("meta") or {}).get("lastUpdated")
                    if updated and (newest is None or updated > newest):
                        newest = updated
                    yield RawResource(f"{url}#Bundle.entry[{i}].resource", resource,
                                      entry.get("fullUrl"))
                url = next((link.get("url") for link in bundle.get("link") or ()
                            if link.get("relation") == "next"), None)
                page_params = None  # the next link carries its own query
            if newest is not None:
                cursor[rtype] = newest
                save_cursor(self.cursor_path, cursor)
