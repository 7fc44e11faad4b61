"""Where records are written in the Confluent framing: wherever a registry is configured, and
the development environment (the local services) configures one."""

from __future__ import annotations

import pytest

from novamind.platform.settings import KafkaSettings, LocalServicesSettings, Settings
from schemas.codec import AvroCodec, Framing, SubjectStrategy

VARIABLES = (
    "NOVAMIND_KAFKA__SCHEMA_REGISTRY_URL",
    "NOVAMIND_KAFKA__AVRO_FRAMING",
    "NOVAMIND_ENVIRONMENT",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_development_uses_the_local_registry() -> None:
    settings = Settings(local=LocalServicesSettings(registry_port=18081))
    assert settings.kafka.schema_registry_url == "http://127.0.0.1:18081/apis/ccompat/v7"
    codec = AvroCodec.from_settings(settings)
    assert codec.framing is Framing.CONFLUENT and codec.subject_strategy is SubjectStrategy.TOPIC


def test_other_environments_need_an_explicit_registry() -> None:
    for environment in ("test", "production"):
        settings = Settings(environment=environment)
        assert settings.kafka.schema_registry_url is None
        assert AvroCodec.from_settings(settings).framing is Framing.SINGLE_OBJECT


def test_an_empty_url_means_no_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVAMIND_KAFKA__SCHEMA_REGISTRY_URL", "")
    assert Settings().kafka.schema_registry_url is None
    assert AvroCodec.from_settings(Settings()).framing is Framing.SINGLE_OBJECT


def test_an_explicit_url_and_framing_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVAMIND_KAFKA__SCHEMA_REGISTRY_URL", "https://registry.example:8081")
    monkeypatch.setenv("NOVAMIND_KAFKA__AVRO_FRAMING", "single_object")
    settings = Settings(environment="production")
    assert settings.kafka.schema_registry_url == "https://registry.example:8081"
    assert AvroCodec.from_settings(settings).framing is Framing.SINGLE_OBJECT


def test_subjects_follow_the_topic_prefix() -> None:
    kafka = KafkaSettings(topic_prefix="staging.", schema_registry_url="http://127.0.0.1:9")
    codec = AvroCodec.from_settings(kafka)
    assert codec.subject("TwinUpdate", "staging.twin-updates") == "staging.twin-updates-value"
    assert (
        codec.subject("AssessmentResult", "staging.patient-reports")
        == "staging.patient-reports-health.novamind.v1.AssessmentResult"
    )
    assert codec.subject("TwinUpdate", "someone-elses-topic") == "someone-elses-topic-value"


def test_a_record_a_declared_topic_does_not_carry_is_an_encode_error() -> None:
    from schemas.exceptions import EncodeError

    codec = AvroCodec.from_settings(KafkaSettings(schema_registry_url="http://127.0.0.1:9"))
    with pytest.raises(EncodeError, match="topic twin-alerts carries no TwinUpdate records"):
        codec.subject("TwinUpdate", "twin-alerts")
