"""The real schema registry (Apicurio Registry's Confluent API): every published version passes
its own BACKWARD check in order, ``topics create`` registers subjects and reports drift, the
workers' outputs carry registry ids, and a topic of single-object records is migrated."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from novamind.app.localservices import LocalServices, registry_answers
from novamind.platform.producer import EventProducer
from novamind.platform.reframe import ReframeError, reframe_topic
from novamind.platform.settings import Settings, local_registry_url
from novamind.platform.topicadmin import cluster_topics, ensure_subjects, registry_client
from schemas.catalog import catalog, short_name
from schemas.codec import AvroCodec, registry_text
from schemas.exceptions import IncompatibleSchema
from schemas.registry import ConfluentRegistryClient
from schemas.topics import value_subjects
from tests.integration.harness import isolated, read_topic
from tests.schemas.conftest import sample_records
from tests.services import ServiceAddresses


def _client(settings: Settings) -> ConfluentRegistryClient:
    client = registry_client(settings.kafka)
    assert client is not None, "the local services configure a schema registry"
    return client


def test_every_published_version_passes_the_registrys_backward_check_in_order(
    settings: Settings, run_id: str
) -> None:
    """CI's proof that schemas/avsc/history evolves compatibly, by the registry's own checker."""
    registry = _client(settings)
    checked = 0
    for name, versions in sorted(catalog().versions.items()):
        subject = f"ci-{run_id}-{name}"
        registry.set_compatibility(subject, "BACKWARD")
        for version in versions:
            text = registry_text(version)
            assert registry.is_compatible(subject, text), f"{name} v{version.version} breaks BACKWARD"
            registry.register(subject, text)
            checked += 1
        assert len(registry.versions(subject)) == len(versions), name
        assert registry.compatibility(subject) == "BACKWARD"
    assert checked == sum(len(v) for v in catalog().versions.values())

    # The check can fail: a new required field cannot read the older data.
    subject = f"ci-{run_id}-health.novamind.v1.TwinAlert"
    broken = dict(catalog().get("TwinAlert").schema)
    broken["fields"] = [*broken["fields"], {"name": "required_new", "type": "string", "doc": "x"}]
    assert not registry.is_compatible(subject, json.dumps(broken))
    with pytest.raises(IncompatibleSchema):
        ConfluentRegistryClient(url=settings.kafka.schema_registry_url or "").register(
            subject, json.dumps(broken)
        )


def test_topics_create_registers_subjects_and_reports_drift(
    settings: Settings, run_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = isolated(settings, f"subjects-{run_id}")
    registry = _client(scenario)
    assert ensure_subjects(scenario.kafka) == 0
    out = capsys.readouterr().out
    subjects = {
        subject: record
        for spec in cluster_topics(scenario.kafka)
        for record, subject in value_subjects(spec).items()
    }
    prefix = scenario.kafka.topic_prefix
    assert subjects[f"{prefix}twin-updates-value"] == "TwinUpdate"
    assert subjects[f"{prefix}patient-reports-health.novamind.v1.SymptomReport"] == "SymptomReport"
    for subject, record in subjects.items():
        assert registry.compatibility(subject) == "BACKWARD", subject
        published = catalog().versions[f"health.novamind.v1.{record}"]
        assert len(registry.versions(subject)) == len(published), subject
    assert f"registered {prefix}twin-updates-value: TwinUpdate v1" in out

    # Again: nothing to do. Then a foreign latest version under one subject is drift.
    assert ensure_subjects(scenario.kafka) == 0
    assert "0 versions registered now" in capsys.readouterr().out
    subject = f"{prefix}twin-alerts-value"
    registry.set_compatibility(subject, "NONE")
    foreign = {"type": "record", "name": "Other", "namespace": "elsewhere", "fields": []}
    registry.register(subject, json.dumps(foreign))
    assert ensure_subjects(scenario.kafka) == 1
    out = capsys.readouterr().out
    assert f"DRIFT   {subject}: its latest version" in out
    assert f"set     {subject}: compatibility BACKWARD (was NONE)" in out


def test_outputs_carry_registry_ids_that_any_confluent_reader_resolves(
    settings: Settings, run_id: str
) -> None:
    """What the codec writes with the registry, confluent-kafka's own deserializer reads."""
    scenario = isolated(settings, f"ids-{run_id}")
    codec = AvroCodec.from_settings(scenario.kafka)
    topic = scenario.kafka.topic("twin-updates")
    update = sample_records()["TwinUpdate"]
    data = codec.encode(update, topic=topic)
    assert data[0] == 0
    schema_id = int.from_bytes(data[1:5], "big")
    assert codec.encode(update, topic=topic) == data  # same id every time: replay stays byte-identical
    again = AvroCodec.from_settings(scenario.kafka).encode(update, topic=topic)
    assert again == data  # and in another process against the same registry
    client = SchemaRegistryClient({"url": scenario.kafka.schema_registry_url})
    latest = client.get_latest_version(f"{topic}-value")
    assert latest.schema_id == schema_id
    record = AvroDeserializer(client)(data, SerializationContext(topic, MessageField.VALUE))
    assert record == update.model_dump()


def test_a_single_object_topic_is_migrated_without_losing_a_byte(
    settings: Settings, run_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/consumers.md, 'Migrating a topic': old single-object records and new Confluent ones
    in one topic; the dry run names the cut-over offsets; the copy reads with a plain reader."""
    scenario = isolated(settings, f"migrate-{run_id}")
    source, target = "twin-alerts", "twin-alerts-confluent"
    single, confluent = AvroCodec(), AvroCodec.from_settings(scenario.kafka)
    topic = scenario.kafka.topic(source)
    alert = sample_records()["TwinAlert"]
    key = alert.patient_id.encode()
    old = single.encode(alert)
    new = confluent.encode(alert, topic=topic)
    producer = EventProducer(kafka=scenario.kafka, client_id="migration-test")
    for value in (old, old, new):
        producer.send(topic, key=key, value=value)
    assert producer.flush(30) == 0

    dry = reframe_topic(scenario.kafka, source, target, dry_run=True)
    (partition,) = [p for p in dry.partitions if p.single_object or p.confluent]
    assert (partition.single_object, partition.confluent, partition.cutover) == (2, 1, 2)
    assert dry.copied == 0

    report = reframe_topic(scenario.kafka, source, target)
    assert report.copied == 3 and report.single_object == 2
    copied = read_topic(scenario, target)
    originals = read_topic(scenario, source)
    assert [(m.partition(), m.key(), m.timestamp()) for m in copied] == [
        (m.partition(), m.key(), m.timestamp()) for m in originals
    ]
    assert all(m.value()[:1] == b"\x00" for m in copied)
    assert [m.value()[5:] for m in copied] == [old[10:], old[10:], new[5:]]  # bodies untouched
    client = SchemaRegistryClient({"url": scenario.kafka.schema_registry_url})
    reader = AvroDeserializer(client)
    target_topic = scenario.kafka.topic(target)
    for message in copied:
        context = SerializationContext(target_topic, MessageField.VALUE)
        assert reader(message.value(), context) == alert.model_dump()

    with pytest.raises(ReframeError, match="already holds records"):
        reframe_topic(scenario.kafka, source, target)


def test_workers_publish_confluent_framed_outputs(settings: Settings, run_id: str, tmp_path: Path) -> None:
    """With the local registry configured, every Avro output of a worker is Confluent-framed
    and names a schema registered under its topic's subject."""
    from tests.integration.harness import WorkerProcess
    from tests.integration.test_foundation import PATIENT, _phq9

    scenario = isolated(settings, f"framing-{run_id}")
    assert ensure_subjects(scenario.kafka) == 0
    producer = EventProducer(kafka=scenario.kafka, client_id="framing-test")
    producer.send(
        scenario.kafka.topic("patient-reports"),
        key=PATIENT.encode(),
        value=AvroCodec().encode(_phq9([1, 1, 1, 1, 1, 1, 1, 1, 1])),  # single-object input
    )
    assert producer.flush(30) == 0
    outputs = ("twin-inputs", "twin-updates", "twin-alerts")
    worker = WorkerProcess(scenario, tmp_path, "framing")
    try:
        # the item-9 alert comes from the safety watch, which may publish after the twin update
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(read_topic(scenario, name) for name in outputs):
            assert worker.alive(), worker.log()[-3000:]
            time.sleep(0.5)
    finally:
        worker.stop()
    registry = _client(scenario)
    for name in outputs:
        messages = read_topic(scenario, name)
        assert messages, name
        for message in messages:
            value = message.value()
            assert value[:1] == b"\x00", name
            schema = json.loads(registry.get_schema(int.from_bytes(value[1:5], "big")))
            spec = next(s for s in cluster_topics(scenario.kafka) if s.name == scenario.kafka.topic(name))
            assert short_name(schema["name"]) in value_subjects(spec), name


def test_the_local_registry_keeps_its_subjects_across_a_restart(
    settings: Settings, services: ServiceAddresses, run_id: str
) -> None:
    local = Settings().local
    if services.registry_url != local_registry_url(local):
        pytest.skip("restarts only the registry of the local services")
    registry = _client(settings)
    subject = f"restart-{run_id}-value"
    schema_id = registry.register(subject, registry_text(catalog().get("TwinAlert")))
    registry.set_compatibility(subject, "BACKWARD")
    services_ = LocalServices(settings=local)
    services_.stop("registry")
    assert not registry_answers(services.registry_url)
    services_.start("registry")
    fresh = _client(settings)
    assert fresh.latest(subject) == (schema_id, registry_text(catalog().get("TwinAlert")))
    assert fresh.compatibility(subject) == "BACKWARD"
