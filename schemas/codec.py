"""Avro codec: fastavro schemaless bodies in one of two framings.

* ``single_object`` (default, no registry): ``C3 01`` + 8-byte little-endian CRC-64-AVRO
  fingerprint of the writer schema's Parsing Canonical Form + body (Avro spec).
* ``confluent``: ``00`` + 4-byte big-endian registry schema id + body. The schema is registered
  (idempotently) under the subject of the topic-name strategy by default
  (:func:`schemas.topics.value_subjects`); a registry gives the same schema the same id, so
  the bytes of a record are the same on every run against one registry.

Decoding detects the framing from the first byte, finds the writer schema by fingerprint
(every published version in ``schemas/avsc/history``) or registry id, and reads into the
current schema of that record (Avro schema resolution), so old producers stay readable.
Schemas are parsed once; the dict paths (``encode_dict``/``decode_dict``) skip pydantic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from enum import StrEnum
from io import BytesIO
from typing import Any, NamedTuple, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form
from fastavro.validation import validate
from pydantic import ValidationError

from schemas.catalog import Catalog, SchemaVersion, catalog, full_name, short_name
from schemas.exceptions import (
    BadFraming,
    ContractViolation,
    CorruptBody,
    EncodeError,
    RegistryError,
    SchemaNotFound,
    TrailingBytes,
    TruncatedBody,
    UnknownFingerprint,
    UnknownRecord,
    UnknownSchemaId,
)
from schemas.models import MODELS, Record
from schemas.registry import ConfluentRegistryClient, SchemaRegistry
from schemas.topics import TopicSpec, declared_topics, value_subjects

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
SINGLE_OBJECT_HEADER = 10
CONFLUENT_HEADER = 5


class Framing(StrEnum):
    """Wire framing written by :meth:`AvroCodec.encode` (decoding accepts both)."""

    SINGLE_OBJECT = "single_object"
    CONFLUENT = "confluent"


class SubjectStrategy(StrEnum):
    """Registry subject naming (Confluent strategies)."""

    TOPIC = "topic"  # <topic>-value; <topic>-<full record name> on declared multi-record topics
    RECORD = "record"  # <full record name>
    TOPIC_RECORD = "topic_record"  # <topic>-<full record name>


def registry_text(version: SchemaVersion) -> str:
    """The schema text registered for a published version: one text per version, so the
    registry gives it one id whoever registers it (codec, ``topics create``, migration)."""
    return json.dumps(version.schema)


class _Reader(NamedTuple):
    name: str  # short record name
    writer: dict[str, Any]
    reader: dict[str, Any] | None  # None when the writer is the current schema
    start: int  # body offset (header length)


class AvroCodec:
    """Encode pydantic models or dicts to framed Avro, and back."""

    def __init__(
        self,
        *,
        framing: Framing | str = Framing.SINGLE_OBJECT,
        registry: SchemaRegistry | None = None,
        subject_strategy: SubjectStrategy | str = SubjectStrategy.RECORD,
        schemas: Catalog | None = None,
        topics: Iterable[TopicSpec] = (),
    ) -> None:
        """``topics`` (named as on the cluster) tell the topic strategy which topics carry
        several record types; a topic not among them gets ``<topic>-value``."""
        self.framing = Framing(framing)
        self.subject_strategy = SubjectStrategy(subject_strategy)
        if self.framing is Framing.CONFLUENT and registry is None:
            raise RegistryError("confluent framing needs a schema registry")
        self._registry = registry
        self._catalog = schemas or catalog()
        self._topic_subjects = {spec.name: value_subjects(spec) for spec in topics}
        self._needs_topic = self.framing is Framing.CONFLUENT and (
            self.subject_strategy is not SubjectStrategy.RECORD
        )
        self._encoders: dict[tuple[str, str | None], tuple[bytes, dict[str, Any]]] = {}
        self._plain_schemas: dict[tuple[int, int], tuple[dict[str, Any], dict[str, Any] | None]] = {}
        # Readers by framing header: 10-byte single-object, 5-byte Confluent (learnt lazily).
        self._by_header: dict[bytes, _Reader] = {}
        for version in self._catalog.by_fingerprint.values():
            current = self._catalog.current[version.name]
            same = version.canonical == current.canonical
            self._by_header[version.header] = _Reader(
                short_name(version.name),
                version.parsed,
                None if same else current.parsed,
                SINGLE_OBJECT_HEADER,
            )

    @classmethod
    def from_settings(cls, settings: Any) -> AvroCodec:
        """Build from ``novamind.platform.settings.Settings`` (its ``kafka`` section) or ``KafkaSettings``.

        Reads ``schema_registry_url`` and, when present, ``avro_framing``,
        ``schema_subject_strategy``, ``schema_registry_username``/``_password`` and
        ``topic_prefix``. Without an explicit framing, a registry URL selects Confluent framing,
        else single-object. The subject strategy defaults to the topic-name one.
        """
        section = getattr(settings, "kafka", settings)
        url = getattr(section, "schema_registry_url", None)
        password = getattr(section, "schema_registry_password", None)
        if password is not None and hasattr(password, "get_secret_value"):
            password = password.get_secret_value()
        registry = None
        if url:
            registry = ConfluentRegistryClient(
                url=str(url),
                username=getattr(section, "schema_registry_username", None),
                password=password,
            )
        framing = getattr(section, "avro_framing", None) or (
            Framing.CONFLUENT if registry else Framing.SINGLE_OBJECT
        )
        prefix = getattr(section, "topic_prefix", "") or ""
        return cls(
            framing=framing,
            registry=registry,
            subject_strategy=getattr(section, "schema_subject_strategy", None) or SubjectStrategy.TOPIC,
            topics=[replace(spec, name=f"{prefix}{spec.name}") for spec in declared_topics()],
        )

    # ------------------------------------------------------------------ encode
    def encode(self, model: Record, *, topic: str | None = None) -> bytes:
        """Framed Avro bytes of a model (``topic`` only for topic subject strategies)."""
        return self.encode_dict(model.avro_name, model.model_dump(), topic=topic)

    def encode_dict(self, record_name: str, record: dict[str, Any], *, topic: str | None = None) -> bytes:
        """Framed Avro bytes of a plain dict shaped like the record (fast path)."""
        key = (record_name, topic if self._needs_topic else None)
        entry = self._encoders.get(key) or self._encoders.setdefault(key, self._prepare(*key))
        out = BytesIO()
        try:
            schemaless_writer(out, entry[1], record)
        except Exception as exc:
            reason = _describe_encode_failure(record_name, entry[1], record, exc)
            raise EncodeError(reason) from exc
        return entry[0] + out.getvalue()

    def prepare(self, record_name: str, *, topic: str | None = None) -> None:
        """Resolve the framing of ``record_name`` on ``topic`` now (with a registry: register or
        find its schema), so that a registry problem shows at start-up, not in a batch."""
        key = (record_name, topic if self._needs_topic else None)
        if key not in self._encoders:
            self._encoders[key] = self._prepare(*key)

    def _prepare(self, record_name: str, topic: str | None) -> tuple[bytes, dict[str, Any]]:
        try:
            version = self._catalog.get(record_name)
        except UnknownRecord as exc:
            raise EncodeError(str(exc)) from exc
        if self.framing is Framing.SINGLE_OBJECT:
            return version.header, version.parsed
        header = self._confluent_header(self._catalog.versions[version.name][-1], topic)
        reader = _Reader(short_name(version.name), version.parsed, None, CONFLUENT_HEADER)
        self._by_header.setdefault(header, reader)
        return header, version.parsed

    def subject(self, record_name: str, topic: str | None) -> str:
        """The registry subject of ``record_name`` (short or full) written to ``topic``."""
        name = full_name(record_name)
        if self._needs_topic and not topic:
            raise EncodeError(f"subject strategy {self.subject_strategy} needs a topic")
        if self.subject_strategy is SubjectStrategy.RECORD:
            return name
        if self.subject_strategy is SubjectStrategy.TOPIC_RECORD:
            return f"{topic}-{name}"
        subjects = self._topic_subjects.get(str(topic))
        if subjects is None:
            return f"{topic}-value"
        try:
            return subjects[short_name(name)]
        except KeyError:
            raise EncodeError(f"topic {topic} carries no {short_name(name)} records") from None

    def _confluent_header(self, version: SchemaVersion, topic: str | None) -> bytes:
        assert self._registry is not None
        schema_id = self._registry.register(self.subject(version.name, topic), registry_text(version))
        return CONFLUENT_MAGIC + schema_id.to_bytes(4, "big")

    def to_confluent(self, data: bytes, *, topic: str | None = None) -> bytes:
        """The same record in the Confluent framing: a single-object record's header is replaced
        by its writer version's registry id and its body is kept byte for byte (a migration
        loses nothing, not even fields an older reader would drop); Confluent data is returned
        as it is. Typed :class:`DecodeError` for anything else."""
        if self._registry is None:
            raise RegistryError("the confluent framing needs a schema registry")
        if data[:1] == CONFLUENT_MAGIC:
            self.decode_dict(data)  # the writer schema must be known and the body valid
            return data
        self.decode_dict(data)  # framing, fingerprint and body checked with typed errors
        writer = self._catalog.by_fingerprint[int.from_bytes(data[2:SINGLE_OBJECT_HEADER], "little")]
        header = self._confluent_header(writer, topic)
        current = self._catalog.current[writer.name]
        same = writer.canonical == current.canonical
        reader = None if same else current.parsed
        entry = _Reader(short_name(writer.name), writer.parsed, reader, CONFLUENT_HEADER)
        self._by_header.setdefault(header, entry)
        return header + data[SINGLE_OBJECT_HEADER:]

    # ------------------------------------------------------------------ decode
    def decode(self, data: bytes) -> Record:
        """Model instance of the framed Avro ``data`` (class chosen by writer record name)."""
        name, record = self.decode_dict(data)
        try:
            return MODELS[name].model_validate(record)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)
            )
            raise ContractViolation(f"{name} breaks its contract: {problems}", data=data) from None

    def decode_dict(self, data: bytes, *, logical: bool = True) -> tuple[str, dict[str, Any]]:
        """``(record name, dict)`` of the framed Avro ``data``, read into the current schema.

        ``logical=False`` leaves logical types as their Avro values (timestamps as epoch
        milliseconds, dates as days since the epoch), which is cheaper: converting a biometric
        sample's two timestamps to datetimes takes about a quarter of its decode (bench_codec).
        Encoding such a dict gives the same bytes."""
        # Hot path: one dict lookup on the 10-byte single-object header or 5-byte Confluent one.
        entry = self._by_header.get(data[:SINGLE_OBJECT_HEADER])
        if entry is None:
            entry = self._by_header.get(data[:CONFLUENT_HEADER]) or self._resolve_header(data)
        name, writer, reader, start = entry
        if not logical:
            writer, reader = self._plain(writer, reader)
        buf = BytesIO(data)
        buf.seek(start)
        try:
            record = schemaless_reader(buf, writer, reader)
        except Exception as exc:
            # fastavro raises EOFError, or IndexError when a varint is cut (continuation bit set)
            if isinstance(exc, EOFError) or (
                isinstance(exc, IndexError) and buf.tell() >= len(data) and data[-1] & 0x80
            ):
                raise TruncatedBody(f"{name} body ends early", data=data) from None
            reason = f"{name} body is not valid Avro ({type(exc).__name__})"
            raise CorruptBody(reason, data=data) from None
        if buf.tell() != len(data):
            extra = len(data) - buf.tell()
            raise TrailingBytes(f"{name} followed by {extra} extra bytes", data=data)
        return name, cast(dict[str, Any], record)

    def _plain(
        self, writer: dict[str, Any], reader: dict[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The writer and reader schemas without their logical types (made once per pair)."""
        key = (id(writer), id(reader))  # the schemas live as long as the codec
        pair = self._plain_schemas.get(key)
        if pair is None:
            pair = self._plain_schemas[key] = (
                _without_logical_types(writer),
                None if reader is None else _without_logical_types(reader),
            )
        return pair

    def _resolve_header(self, data: bytes) -> _Reader:
        """Slow path: classify the framing, raise typed errors, learn new registry ids."""
        if data[:2] == SINGLE_OBJECT_MAGIC:
            if len(data) < SINGLE_OBJECT_HEADER:
                raise BadFraming("single-object header cut short", data=data)
            raise UnknownFingerprint("writer schema fingerprint unknown", data=data)
        if data[:1] != CONFLUENT_MAGIC:
            raise BadFraming("neither single-object nor confluent framing", data=data)
        if len(data) < CONFLUENT_HEADER:
            raise BadFraming("confluent header cut short", data=data)
        schema_id = int.from_bytes(data[1:5], "big")
        if self._registry is None:
            raise UnknownSchemaId("confluent framing but no registry configured", data=data)
        try:
            schema = json.loads(self._registry.get_schema(schema_id))
        except SchemaNotFound:
            raise UnknownSchemaId(f"schema id {schema_id} unknown", data=data) from None
        except ValueError:
            raise UnknownSchemaId(f"schema id {schema_id} is not Avro JSON", data=data) from None
        name = (
            full_name(str(schema.get("name", "")), str(schema.get("namespace", "")))
            if isinstance(schema, dict)
            else ""
        )
        current = self._catalog.current.get(name)
        if current is None:
            raise UnknownSchemaId(f"schema id {schema_id} is not a known record", data=data)
        try:
            same = to_parsing_canonical_form(schema) == current.canonical
            writer = current.parsed if same else parse_schema(schema, named_schemas={})
        except Exception:  # fastavro's SchemaParseException and friends
            raise UnknownSchemaId(f"schema id {schema_id} does not parse", data=data) from None
        entry = _Reader(
            short_name(name),
            cast(dict[str, Any], writer),
            None if same else current.parsed,
            CONFLUENT_HEADER,
        )
        return self._by_header.setdefault(bytes(data[:CONFLUENT_HEADER]), entry)


def _describe_encode_failure(name: str, parsed: dict[str, Any], record: Any, exc: Exception) -> str:
    """Names the fields that do not fit the schema, never their values."""
    if not isinstance(record, dict):
        return f"cannot encode {name}: expected a dict, got {type(record).__name__}"
    try:
        validate(record, parsed, raise_errors=True)
    except Exception as invalid:
        fields = sorted({short_name(str(e.field)) for e in getattr(invalid, "errors", [])})
        if fields:
            return f"cannot encode {name}: invalid fields {', '.join(fields)}"
    return f"cannot encode {name}: {type(exc).__name__}"


def _without_logical_types(parsed: dict[str, Any]) -> dict[str, Any]:
    """A parsed schema whose logical types read as their underlying Avro types."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in _NOT_PLAIN}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return cast(dict[str, Any], parse_schema(strip(parsed), named_schemas={}))


_NOT_PLAIN = frozenset({"logicalType", "__fastavro_parsed", "__named_schemas"})
