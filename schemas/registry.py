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

from schemas.exceptions import BadRegistryAnswer, IncompatibleSchema, RegistryError, SchemaNotFound

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
COMPATIBILITY_LEVELS = frozenset(
    {"NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"}
)


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

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any] | list[Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self._url + path, data=data, method=method, headers=self._headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            message = _error_message(exc)
            if exc.code == 404:
                raise SchemaNotFound(f"{method} {path}: HTTP 404 {message}") from exc
            if exc.code == 409:
                raise IncompatibleSchema(f"{method} {path}: HTTP 409 {message}") from exc
            raise RegistryError(f"{method} {path}: HTTP {exc.code} {message}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise RegistryError(f"{method} {path}: {exc}") from exc
        try:
            answer = json.loads(raw)
        except ValueError:
            raise BadRegistryAnswer(f"{method} {path}: the answer is not JSON ({len(raw)} bytes)") from None
        if not isinstance(answer, dict | list):
            raise BadRegistryAnswer(f"{method} {path}: unexpected answer of type {type(answer).__name__}")
        return answer

    def _field(self, answer: object, name: str, kind: type, what: str) -> Any:
        value = answer.get(name) if isinstance(answer, dict) else None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BadRegistryAnswer(f"{what}: the answer has no {kind.__name__} {name!r}")
        return value

    @staticmethod
    def _subject(subject: str) -> str:
        return urllib.parse.quote(subject, safe="")

    def register(self, subject: str, schema: str) -> int:
        """POST /subjects/{subject}/versions (idempotent); cached per (subject, schema).

        :class:`IncompatibleSchema` when the subject's compatibility rule refuses it."""
        key = (subject, schema)
        if key not in self._registered:
            path = f"/subjects/{self._subject(subject)}/versions"
            answer = self._request("POST", path, {"schema": schema})
            schema_id = int(self._field(answer, "id", int, f"POST {path}"))
            self._registered[key] = schema_id
            self._by_id[schema_id] = schema
        return self._registered[key]

    def get_schema(self, schema_id: int) -> str:
        """GET /schemas/ids/{id}; cached (ids are immutable)."""
        if schema_id not in self._by_id:
            path = f"/schemas/ids/{schema_id}"
            answer = self._request("GET", path)
            self._by_id[schema_id] = str(self._field(answer, "schema", str, f"GET {path}"))
        return self._by_id[schema_id]

    def lookup(self, subject: str, schema: str) -> int | None:
        """POST /subjects/{subject}: the id of ``schema`` if it is a version of ``subject``, else None."""
        path = f"/subjects/{self._subject(subject)}"
        try:
            answer = self._request("POST", path, {"schema": schema})
        except SchemaNotFound:
            return None
        return int(self._field(answer, "id", int, f"POST {path}"))

    def versions(self, subject: str) -> list[int]:
        """GET /subjects/{subject}/versions: version numbers, oldest first ([] for no subject)."""
        path = f"/subjects/{self._subject(subject)}/versions"
        try:
            answer = self._request("GET", path)
        except SchemaNotFound:
            return []
        if not isinstance(answer, list) or not all(isinstance(v, int) for v in answer):
            raise BadRegistryAnswer(f"GET {path}: expected a list of version numbers")
        return list(answer)

    def latest(self, subject: str) -> tuple[int, str] | None:
        """``(id, schema)`` of the subject's newest version; None when the subject is unknown."""
        path = f"/subjects/{self._subject(subject)}/versions/latest"
        try:
            answer = self._request("GET", path)
        except SchemaNotFound:
            return None
        what = f"GET {path}"
        return int(self._field(answer, "id", int, what)), str(self._field(answer, "schema", str, what))

    def compatibility(self, subject: str) -> str | None:
        """The subject's own compatibility level; None when it has none (the global one applies)."""
        path = f"/config/{self._subject(subject)}"
        try:
            answer = self._request("GET", path)
        except SchemaNotFound:
            return None
        return str(self._field(answer, "compatibilityLevel", str, f"GET {path}"))

    def set_compatibility(self, subject: str, level: str) -> None:
        """PUT /config/{subject}."""
        if level not in COMPATIBILITY_LEVELS:
            raise RegistryError(f"unknown compatibility level {level!r}")
        path = f"/config/{self._subject(subject)}"
        answer = self._request("PUT", path, {"compatibility": level})
        # Confluent answers {"compatibility": ...}, Apicurio {"compatibilityLevel": ...}
        taken = answer if isinstance(answer, dict) else {}
        if taken.get("compatibility", taken.get("compatibilityLevel")) != level:
            raise BadRegistryAnswer(f"PUT {path}: the registry did not take compatibility {level}")

    def is_compatible(self, subject: str, schema: str) -> bool:
        """POST /compatibility/subjects/{subject}/versions/latest: would ``schema`` be accepted?"""
        path = f"/compatibility/subjects/{self._subject(subject)}/versions/latest"
        try:
            answer = self._request("POST", path, {"schema": schema})
        except SchemaNotFound:
            return True  # no version yet: anything is accepted
        return bool(self._field(answer, "is_compatible", bool, f"POST {path}"))


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("message", ""))[:200]
    except (ValueError, OSError):
        return ""
