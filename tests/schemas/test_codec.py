"""Codec round trips (both framings), property tests and typed, payload-free errors."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import models as m
from schemas.catalog import catalog
from schemas.codec import AvroCodec, Framing, SubjectStrategy
from schemas.exceptions import (
    BadFraming,
    ContractViolation,
    CorruptBody,
    DecodeError,
    EncodeError,
    RegistryError,
    SchemaError,
    TrailingBytes,
    TruncatedBody,
    UnknownFingerprint,
    UnknownSchemaId,
)
from schemas.registry import ConfluentRegistryClient, InMemoryRegistry
from tests.schemas.conftest import envelope, sample_records
from tests.schemas.strategies import for_schema

RECORDS = sorted(sample_records())
SECRET = "S3CRET-CONTEXT-7f3a"


@pytest.fixture(params=["single_object", "confluent"])
def codec(request: pytest.FixtureRequest) -> AvroCodec:
    if request.param == "confluent":
        return AvroCodec(framing=Framing.CONFLUENT, registry=InMemoryRegistry())
    return AvroCodec()


@pytest.mark.parametrize("name", RECORDS)
def test_model_round_trip(codec: AvroCodec, name: str) -> None:
    record = sample_records()[name]
    data = codec.encode(record)
    assert type(codec.decode(data)) is type(record)
    assert codec.decode(data) == record
    assert codec.decode_dict(data) == (name, record.model_dump())


def test_framing_headers() -> None:
    record = sample_records()["BiometricSample"]
    single = AvroCodec().encode(record)
    assert single[:10] == catalog().get("BiometricSample").header
    registry = InMemoryRegistry()
    confluent = AvroCodec(framing="confluent", registry=registry).encode(record)
    assert confluent[0] == 0
    schema_id = int.from_bytes(confluent[1:5], "big")
    assert json.loads(registry.get_schema(schema_id))["name"] == "BiometricSample"
    assert single[10:] == confluent[5:]  # same body, different framing


def test_decoding_detects_framing_whatever_the_configuration() -> None:
    registry = InMemoryRegistry()
    confluent = AvroCodec(framing="confluent", registry=registry)
    single = AvroCodec(registry=registry)
    record = sample_records()["TwinUpdate"]
    assert single.decode(confluent.encode(record)) == record
    assert confluent.decode(single.encode(record)) == record


@pytest.mark.parametrize(
    ("strategy", "topic", "subject"),
    [
        (SubjectStrategy.RECORD, None, "health.novamind.v1.TwinAlert"),
        (SubjectStrategy.TOPIC, "twin-alerts", "twin-alerts-value"),
        (SubjectStrategy.TOPIC_RECORD, "twin-alerts", "twin-alerts-health.novamind.v1.TwinAlert"),
    ],
)
def test_subject_strategies(strategy: SubjectStrategy, topic: str | None, subject: str) -> None:
    registry = InMemoryRegistry()
    codec = AvroCodec(framing="confluent", registry=registry, subject_strategy=strategy)
    codec.encode(sample_records()["TwinAlert"], topic=topic)
    assert list(registry.subjects) == [subject]


def test_topic_strategy_without_topic_is_an_encode_error() -> None:
    codec = AvroCodec(framing="confluent", registry=InMemoryRegistry(), subject_strategy="topic")
    with pytest.raises(EncodeError, match="needs a topic"):
        codec.encode(sample_records()["TwinAlert"])


def test_confluent_without_registry_is_refused() -> None:
    with pytest.raises(RegistryError):
        AvroCodec(framing="confluent")


@pytest.mark.parametrize("name", RECORDS)
def test_without_logical_types_timestamps_are_epoch_millis_and_encode_to_the_same_bytes(
    codec: AvroCodec, name: str
) -> None:
    record = sample_records()[name]
    data = codec.encode(record)
    decoded_name, plain = codec.decode_dict(data, logical=False)
    assert decoded_name == name
    assert codec.encode_dict(name, plain) == data
    event_time = record.model_dump().get("event_time")
    if isinstance(event_time, dt.datetime):
        assert plain["event_time"] == int(event_time.timestamp() * 1000)
    assert codec.decode_dict(data) == (name, record.model_dump())  # the default is unchanged


# ---------------------------------------------------------------- properties
@pytest.mark.parametrize("name", RECORDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_valid_dict_round_trips(codec: AvroCodec, name: str, data: st.DataObject) -> None:
    record = data.draw(for_schema(catalog().get(name).schema))
    decoded_name, decoded = codec.decode_dict(codec.encode_dict(name, record))
    assert decoded_name == name
    assert decoded == record


biometric = st.builds(
    m.BiometricSample,
    event_id=st.text(max_size=40),
    patient_id=st.from_regex(r"\Ap_[0-9a-f]{32}\Z"),
    event_time=st.datetimes(timezones=st.just(dt.UTC), min_value=dt.datetime(1971, 1, 1)),
    received_time=st.datetimes(timezones=st.just(dt.UTC), min_value=dt.datetime(1971, 1, 1)),
    source=st.sampled_from(["fitbit", "apple_health", "openmhealth", "simulator"]),
    metric=st.sampled_from(m.Metric),
    value=st.floats(allow_nan=False),
    unit=st.text(max_size=10),
    duration_seconds=st.none() | st.integers(0, 2**31 - 1),
    sleep_stage=st.none() | st.sampled_from(m.SleepStage),
    device_id=st.text(max_size=20),
    loinc=st.none() | st.text(max_size=8),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sample=biometric)
def test_any_biometric_model_round_trips(codec: AvroCodec, sample: m.BiometricSample) -> None:
    assert codec.decode(codec.encode(sample)) == sample


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_typed_errors(codec: AvroCodec, junk: bytes) -> None:
    for data in (junk, b"\xc3\x01" + catalog().get("DeadLetter").header[2:] + junk):
        try:
            codec.decode(data)
        except DecodeError as exc:
            assert exc.length == len(data)


# ---------------------------------------------------------------- typed errors
def test_truncated_at_every_length() -> None:
    codec = AvroCodec()
    data = codec.encode(sample_records()["SymptomReport"])
    for cut in range(len(data)):
        expected = BadFraming if cut < 10 else TruncatedBody
        with pytest.raises(expected) as info:
            codec.decode(data[:cut])
        assert info.value.length == cut


def test_bad_magic() -> None:
    data = AvroCodec().encode(sample_records()["SymptomReport"])
    with pytest.raises(BadFraming, match="neither") as info:
        AvroCodec().decode(b"\x7b" + data[1:])
    assert info.value.prefix_hex == "7b01"


def test_unknown_fingerprint() -> None:
    data = AvroCodec().encode(sample_records()["SymptomReport"])
    bad = data[:2] + b"\x00" * 8 + data[10:]
    with pytest.raises(UnknownFingerprint) as info:
        AvroCodec().decode(bad)
    assert info.value.prefix_hex == "c301" + "00" * 8


def test_unknown_schema_id_and_missing_registry() -> None:
    data = AvroCodec(framing="confluent", registry=InMemoryRegistry()).encode(
        sample_records()["SymptomReport"]
    )
    with pytest.raises(UnknownSchemaId, match="no registry"):
        AvroCodec().decode(data)
    with pytest.raises(UnknownSchemaId, match="unknown"):
        AvroCodec(registry=InMemoryRegistry()).decode(b"\x00\x00\x00\x00\x63" + data[5:])


def test_schema_id_of_a_foreign_record() -> None:
    registry = InMemoryRegistry()
    foreign = registry.register("x", json.dumps({"type": "record", "name": "Foreign", "fields": []}))
    with pytest.raises(UnknownSchemaId, match="not a known record"):
        AvroCodec(registry=registry).decode(b"\x00" + foreign.to_bytes(4, "big"))


def test_trailing_bytes() -> None:
    data = AvroCodec().encode(sample_records()["SymptomReport"])
    with pytest.raises(TrailingBytes, match="2 extra bytes"):
        AvroCodec().decode(data + b"\x00\x00")


def test_corrupt_body() -> None:
    codec = AvroCodec()
    data = codec.encode(sample_records()["Demographics"])
    # The last two bytes are the enum indexes (age_band, sex): 0x7e -> index 63.
    with pytest.raises(CorruptBody):
        codec.decode(data[:-1] + b"\x7e")


def test_contract_violation_names_the_field_not_the_value() -> None:
    codec = AvroCodec()
    record = sample_records()["SymptomReport"].model_dump() | {"severity": 97}
    data = codec.encode_dict("SymptomReport", record)
    assert codec.decode_dict(data)[1]["severity"] == 97  # the dict path does not validate
    with pytest.raises(ContractViolation, match="severity") as info:
        codec.decode(data)
    assert "97" not in str(info.value)


def test_encode_errors_name_fields_not_values() -> None:
    codec = AvroCodec()
    record = sample_records()["SymptomReport"].model_dump()
    with pytest.raises(EncodeError, match="invalid fields symptom_type") as info:
        codec.encode_dict("SymptomReport", record | {"symptom_type": SECRET})
    assert SECRET not in str(info.value)
    with pytest.raises(EncodeError, match="no record named"):
        codec.encode_dict("Nope", record)
    with pytest.raises(EncodeError, match="expected a dict"):
        codec.encode_dict("SymptomReport", None)  # type: ignore[arg-type]


def test_decode_errors_never_carry_the_payload() -> None:
    codec = AvroCodec()
    record = m.SymptomReport(**envelope(), symptom_type=m.SymptomType.PANIC, severity=3, context=SECRET)
    data = codec.encode(record)
    secret_hex = SECRET.encode().hex()
    for bad in (data[:-1], data + b"\x01", b"\x01" + data, data[:2] + b"\x00" * 8 + data[10:]):
        with pytest.raises(DecodeError) as info:
            codec.decode(bad)
        text = str(info.value) + repr(info.value.__cause__)
        assert SECRET not in text and secret_hex not in text
        assert len(info.value.prefix_hex) <= 20
        assert isinstance(info.value, SchemaError)
    registry = InMemoryRegistry()
    confluent = AvroCodec(framing="confluent", registry=registry).encode(record)
    with pytest.raises(TruncatedBody) as truncated:
        AvroCodec(registry=registry).decode(confluent[:-1])
    assert truncated.value.prefix_hex == confluent[:5].hex()  # the header only


# ---------------------------------------------------------------- registry client over HTTP
class _RegistryHandler(BaseHTTPRequestHandler):
    store = InMemoryRegistry()

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        subject = self.path.split("/")[2]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._reply(200, {"id": self.store.register(subject, body["schema"])})

    def do_GET(self) -> None:
        schema_id = int(self.path.rsplit("/", 1)[1])
        try:
            self._reply(200, {"schema": self.store.get_schema(schema_id)})
        except RegistryError:
            self._reply(404, {"error_code": 40403, "message": "Schema not found"})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def registry_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RegistryHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_confluent_registry_client_over_http(registry_url: str) -> None:
    writer = AvroCodec(framing="confluent", registry=ConfluentRegistryClient(url=registry_url))
    reader = AvroCodec(registry=ConfluentRegistryClient(url=registry_url))
    record = sample_records()["TwinAlert"]
    assert reader.decode(writer.encode(record)) == record
    with pytest.raises(UnknownSchemaId):
        reader.decode(b"\x00\x00\x00\x03\xe7")


def test_unreachable_registry_is_a_registry_error() -> None:
    client = ConfluentRegistryClient(url="http://127.0.0.1:9", timeout=0.5)
    with pytest.raises(RegistryError):
        client.get_schema(1)


def test_from_settings() -> None:
    class Kafka:
        schema_registry_url = None

    class Settings:
        kafka = Kafka()

    assert AvroCodec.from_settings(Settings()).framing is Framing.SINGLE_OBJECT
    Kafka.schema_registry_url = "http://127.0.0.1:9"  # type: ignore[assignment]
    assert AvroCodec.from_settings(Settings()).framing is Framing.CONFLUENT
