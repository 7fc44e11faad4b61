"""The one settings model, built once at start-up and passed down.

Every value can be set by an environment variable with the ``NOVAMIND_`` prefix
(nested values use ``__``, e.g. ``NOVAMIND_KAFKA__BOOTSTRAP_SERVERS``). The two
service addresses also honour the conventional ``KAFKA_BOOTSTRAP_SERVERS`` and
``MONGODB_URI`` variables, which test fixtures and container platforms set.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class KafkaSettings(BaseModel):
    """How to reach Kafka and how clients behave."""

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    linger_ms: int = 5
    max_in_flight_messages: int = Field(default=100_000, ge=1)
    partitions: int = Field(default=12, ge=1, description="partition count of patient topics")
    replication_factor: int = Field(default=1, ge=1)
    topic_prefix: str = Field(
        default="", description="prepended to every topic name (isolates environments and test runs)"
    )
    avro_framing: Literal["single_object", "confluent"] | None = Field(
        default=None,
        description="wire framing of written records; default: confluent with a registry, else single_object",
    )
    schema_registry_url: str | None = Field(
        default=None,
        description="Confluent-compatible registry API (Apicurio: .../apis/ccompat/v7); empty: none. "
        "The development environment defaults to the local registry of `make services`",
    )
    schema_registry_username: str | None = None
    schema_registry_password: SecretStr | None = None
    schema_subject_strategy: Literal["topic", "record", "topic_record"] = Field(
        default="topic",
        description="registry subjects: topic = <topic>-value (<topic>-<record> on multi-record topics)",
    )

    @field_validator("schema_registry_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def topic(self, name: str) -> str:
        """The cluster name of a registry topic."""
        return self.topic_prefix + name  # an f-string formats a StrEnum name slowly


class MongoSettings(BaseModel):
    """How to reach the twin store."""

    model_config = ConfigDict(frozen=True)

    uri: SecretStr = SecretStr("mongodb://127.0.0.1:27017/")
    database: str = "novamind"
    tls_ca_file: Path | None = None


class LocalServicesSettings(BaseModel):
    """Ports and folders of the Docker-free development services (deploy/local)."""

    model_config = ConfigDict(frozen=True)

    home: Path = PROJECT_ROOT / ".local"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "768m"
    mongo_port: int = 27017
    registry_port: int = 8081
    registry_heap: str = "256m"
    start_timeout_s: float = 90.0


STATIC_WITHOUT_REPLICA_ID = (
    "static group membership needs a stable replica id: set NOVAMIND_WORKER__REPLICA_ID or "
    "--replica-id (e.g. the pod name)"
)


class WorkerSettings(BaseModel):
    """How a worker replica consumes, checkpoints and serves its views."""

    model_config = ConfigDict(frozen=True)

    max_batch: int = Field(
        default=20_000, ge=1, description="most records per batch (one transaction, one checkpoint)"
    )
    poll_timeout_s: float = Field(default=0.2, gt=0)
    fetch_wait_ms: int = Field(
        default=100,
        ge=0,
        description="a fetch waits this long for more records: a live trickle arrives in batches",
    )
    transaction_timeout_ms: int = Field(
        default=15_000,
        ge=1000,
        description="a killed replica's open transaction is aborted after this",
    )
    wearable_linger_s: float = Field(
        default=5.0,
        ge=0,
        description="a batch of wearable samples alone, fewer than five per patient, waits this "
        "long for more (any other record ends the wait; the item-9 watch never waits)",
    )
    state_write_delay_s: float = Field(
        default=120.0,
        ge=0,
        description="a patient whose window state changed only by journaled samples is written "
        "to the changelog within this long; a restore re-reads those samples from the source "
        "(0: every batch writes every patient it changed)",
    )
    replica_id: str | None = Field(
        default=None, description="stable replica name (e.g. the pod name); default host and pid"
    )
    static_membership: bool = Field(
        default=False,
        description="join the group as a static member named by replica_id: a replica restarted "
        "within the session timeout takes its partitions back without a rebalance; one stopped "
        "for good keeps them until the session timeout",
    )
    lateness_days: int = Field(
        default=30, ge=2, description="events this far behind their stream still fold into their day"
    )
    dedup_horizon_days: int = Field(
        default=31, ge=2, description="event ids are remembered this long (covers lateness_days)"
    )
    window_retention_days: int = Field(
        default=90, ge=2, description="longest a patient-day is kept while a quiet stream may fold into it"
    )
    state_dir: Path | None = Field(
        default=None,
        description="local state stores (RocksDB); kept across restarts when replica_id is set; "
        "default .local/state/<replica_id>, or a temporary folder without a replica_id",
    )
    state_cache_patients: int = Field(
        default=10_000, ge=1, description="patients kept in memory (the least recently used go)"
    )
    state_block_cache_mb: int = Field(default=64, ge=1, description="RocksDB block cache of the stores")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    view_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="actor -> bearer token allowed to read patient views; none: patient views are off",
    )

    @model_validator(mode="after")
    def _windows_cover_lateness(self) -> WorkerSettings:
        for name in ("dedup_horizon_days", "window_retention_days"):
            days = getattr(self, name)
            if days < self.lateness_days:
                raise ValueError(f"{name} ({days}) must cover lateness_days ({self.lateness_days})")
        return self


class TwinSettings(BaseModel):
    """Which model versions the twin stage runs (``NOVAMIND_TWIN__*``; see workers/twin/versions.py).

    ``version`` is the live version until an operator promotes another (``novamind twin
    promote``): the promoted one, stored in MongoDB (``twin_versions``), wins over this setting.
    ``shadow_version`` runs beside the live one on the same inputs, unpublished. ``versions``
    defines more versions by name, each overriding some tunable parameters, e.g.
    ``{"slow-errors": {"forecast.ALPHA_ERR": 0.01}}``."""

    model_config = ConfigDict(frozen=True)

    version: str = Field(default="standard", description="live model version (name or id)")
    shadow_version: str | None = Field(
        default=None, description="model version run in shadow beside the live one (name or id)"
    )
    versions: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="more model versions: name -> {parameter: value}"
    )
    plan_refresh_s: float = Field(
        default=15.0, gt=0, description="how often a worker reads the promoted live version"
    )


class AuthSettings(BaseModel):
    """How the intake and the worker views authenticate bearer tokens (``NOVAMIND_AUTH__*``).

    ``static``: the development token files (intake ``NOVAMIND_INTAKE__TOKENS_FILE``, views
    ``NOVAMIND_WORKER__VIEW_TOKENS``). ``jwt``: OAuth 2.0 access tokens of the organisation's
    identity provider, RS256/ES256 only, checked against ``issuer``, ``audience`` and the keys
    of ``jwks_url`` (or ``jwks_file``); SMART scopes decide what a token may do.
    """

    model_config = ConfigDict(frozen=True)

    mode: Literal["static", "jwt"] = "static"
    issuer: str | None = Field(default=None, description="the exact ``iss`` of accepted tokens")
    audience: str | None = Field(default=None, description="this API's name in ``aud``")
    jwks_url: str | None = Field(default=None, description="the identity provider's JWKS endpoint")
    jwks_file: Path | None = Field(default=None, description="a JWKS JSON file (instead of a URL)")
    jwks_refresh_s: float = Field(default=3600.0, gt=0, description="keys are refetched this often")
    jwks_min_refresh_s: float = Field(
        default=60.0, ge=0, description="an unknown kid refetches the keys at most this often"
    )
    leeway_s: float = Field(default=30.0, ge=0, le=300, description="clock skew allowed on exp/nbf/iat")
    patient_index_file: Path | None = Field(
        default=None,
        description="JSON 'Patient/<id>' -> pseudonym, for FHIR ids in the token's patient claim",
    )
    patient_index_source: str | None = Field(
        default=None,
        description="the EHR source (fhir-sync --source) whose MongoDB patient index resolves FHIR "
        "ids in the token's patient claim",
    )

    @model_validator(mode="after")
    def _jwt_is_complete(self) -> AuthSettings:
        if self.mode != "jwt":
            return self
        missing = [name for name in ("issuer", "audience") if not getattr(self, name)]
        if missing:
            raise ValueError(f"auth mode jwt needs {' and '.join(missing)}")
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("auth mode jwt needs exactly one of jwks_url and jwks_file")
        if self.jwks_url is not None and not _is_trusted_url(self.jwks_url):
            raise ValueError("jwks_url must be https:// (http:// only to localhost)")
        return self


def _is_trusted_url(url: str) -> bool:
    parts = urlsplit(url)
    local = parts.hostname in {"localhost", "127.0.0.1", "::1"}
    return parts.scheme == "https" or (parts.scheme == "http" and local)


class SecuritySettings(BaseModel):
    """Keys for pseudonyms and field encryption: from the environment or secret files, never code.

    ``field_keys`` maps a key id to a base64 AES-256 key; ``active_field_key_id`` encrypts new
    data, older ids still decrypt (rotation re-encrypts nothing).
    """

    model_config = ConfigDict(frozen=True)

    pseudonym_key: SecretStr | None = None
    pseudonym_key_file: Path | None = None
    field_keys: dict[str, SecretStr] = Field(default_factory=dict)
    field_keys_file: Path | None = None
    active_field_key_id: str | None = None
    reidentification_actors: tuple[str, ...] = ()
    reidentification_purposes: tuple[str, ...] = ("TREATMENT", "PATIENT_SAFETY")

    def pseudonym_key_bytes(self) -> bytes:
        """The HMAC key for patient pseudonyms; raises when none is configured."""
        if self.pseudonym_key is not None:
            return self.pseudonym_key.get_secret_value().encode()
        if self.pseudonym_key_file is not None:
            return self.pseudonym_key_file.read_bytes().strip()
        raise ValueError(
            "no pseudonym key: set NOVAMIND_SECURITY__PSEUDONYM_KEY or NOVAMIND_SECURITY__PSEUDONYM_KEY_FILE"
        )

    def field_key_map(self) -> dict[str, bytes]:
        """Field-encryption keys by id, from settings and the optional JSON key file."""
        keys = {kid: base64.b64decode(k.get_secret_value()) for kid, k in self.field_keys.items()}
        if self.field_keys_file is not None:
            stored = json.loads(self.field_keys_file.read_text())
            keys.update({kid: base64.b64decode(k) for kid, k in stored.items()})
        return keys


class Settings(BaseSettings):
    """All configuration of a NOVAMIND process."""

    model_config = SettingsConfigDict(
        env_prefix="NOVAMIND_",
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
    )

    environment: Literal["development", "test", "production"] = "development"
    service_name: str = "novamind"
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    kafka: KafkaSettings = KafkaSettings()
    mongo: MongoSettings = MongoSettings()
    local: LocalServicesSettings = LocalServicesSettings()
    security: SecuritySettings = SecuritySettings()
    auth: AuthSettings = AuthSettings()
    worker: WorkerSettings = WorkerSettings()
    twin: TwinSettings = TwinSettings()
    kafka_bootstrap_servers: str | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS")
    )
    mongodb_uri: SecretStr | None = Field(default=None, validation_alias=AliasChoices("MONGODB_URI"))

    def model_post_init(self, __context: object) -> None:
        # The conventional variables win over defaults, never over explicit NOVAMIND_ ones.
        if self.kafka_bootstrap_servers and "NOVAMIND_KAFKA__BOOTSTRAP_SERVERS" not in os.environ:
            kafka = self.kafka.model_copy(update={"bootstrap_servers": self.kafka_bootstrap_servers})
            object.__setattr__(self, "kafka", kafka)
        if self.mongodb_uri and "NOVAMIND_MONGO__URI" not in os.environ:
            mongo = self.mongo.model_copy(update={"uri": self.mongodb_uri})
            object.__setattr__(self, "mongo", mongo)
        # Development runs on the local services, which include a schema registry: records are
        # written in the Confluent wire format there unless a registry URL (or "") is given.
        if (
            self.environment == "development"
            and "schema_registry_url" not in self.kafka.model_fields_set
            and "NOVAMIND_KAFKA__SCHEMA_REGISTRY_URL" not in os.environ
        ):
            kafka = self.kafka.model_copy(update={"schema_registry_url": local_registry_url(self.local)})
            object.__setattr__(self, "kafka", kafka)


def local_registry_url(local: LocalServicesSettings) -> str:
    """The Confluent-compatible API of the local Apicurio Registry (``make services``)."""
    return f"http://127.0.0.1:{local.registry_port}/apis/ccompat/v7"
