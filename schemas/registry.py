"""Confluent-compatible schema registry: a small urllib client and an in-memory twin.

Both implement :class:`SchemaRegistry` (``register`` and ``get_schema``), which is all the
codec needs. Works with Confluent Schema Registry and Apicurio's ``/apis/ccompat/v7`` API.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

from schemas.exceptions import RegistryError, SchemaNotFound

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaRegistry(Protocol):
    """What the codec needs from a registry."""

    def register(self, subject: str, schema: str) -> int:
        """Register ``schema`` (Avro JSON) under ``subject``; return its global id."""
        ...

    def get_schema(self, schema_id: int) -> str:
        """Avro JSON of the schema with global id ``schema_id``."""
        ...


class InMemoryRegistry:
    """Registry held in memory with the Confluent semantics the codec relies on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}
        self._schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}

    def register(self, subject: str, schema: str) -> int:
        """Same schema text -> same id; a subject lists its versions."""
        with self._lock:
            schema_id = self._ids.setdefault(schema, len(self._ids) + 1)
            self._schemas[schema_id] = schema
            versions = self.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id

    def get_schema(self, schema_id: int) -> str:
        """Schema text by id; :class:`RegistryError` when unknown."""
        try:
            return self._schemas[schema_id]
        except KeyError:
            raise SchemaNotFound(f"schema id {schema_id} not found") from None


class ConfluentRegistryClient:
    """Minimal Confluent Schema Registry REST client with id and subject caches."""

    def __init__(
        self,
        *,
        url: str,
        timeout: float = 5.0,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise RegistryError("registry url must be http(s)")
        self._url = url.rstrip("/")
        self._timeout = timeout
        self._headers = {"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE}
        if username is not None:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._by_id: dict[int, str] = {}
        self._registered: dict[tuple[str, str], int] = {}

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self._url + path, data=data, method=method, headers=self._headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise SchemaNotFound(f"{method} {path}: HTTP 404 {_error_message(exc)}") from exc
            raise RegistryError(f"{method} {path}: HTTP {exc.code} {_error_message(exc)}") from exc
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
            raise RegistryError(f"{method} {path}: {exc}") from exc

    def register(self, subject: str, schema: str) -> int:
        """POST /subjects/{subject}/versions (idempotent); cached per (subject, schema)."""
        key = (subject, schema)
        if key not in self._registered:
            quoted = urllib.parse.quote(subject, safe="")
            answer = self._request("POST", f"/subjects/{quoted}/versions", {"schema": schema})
            schema_id = int(answer["id"])
            self._registered[key] = schema_id
            self._by_id[schema_id] = schema
        return self._registered[key]

    def get_schema(self, schema_id: int) -> str:
        """GET /schemas/ids/{id}; cached (ids are immutable)."""
        if schema_id not in self._by_id:
            answer = self._request("GET", f"/schemas/ids/{schema_id}")
            self._by_id[schema_id] = str(answer["schema"])
        return self._by_id[schema_id]


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("message", ""))[:200]
    except (ValueError, OSError):
        return ""
