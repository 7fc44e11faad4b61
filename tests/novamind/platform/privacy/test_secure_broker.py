"""The secured broker's configuration, checked without starting it."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from novamind.app.exceptions import ServiceError
from novamind.app.secure_broker import TEMPLATE, SecureBroker
from novamind.platform.kafka import producer_config


def broker_factory(tmp_path: Path, **overrides: object) -> SecureBroker:
    options: dict[str, object] = {
        "home": tmp_path,
        "kafka_libs": tmp_path / "libs",
        "admin_password": SecretStr(secrets.token_urlsafe(24)),
        "controller_password": SecretStr(secrets.token_urlsafe(24)),
    }
    options.update(overrides)
    return SecureBroker(**options)  # type: ignore[arg-type]


def test_rendered_config_is_deny_by_default_scram_and_private(tmp_path: Path) -> None:
    broker = broker_factory(tmp_path, port=29092, controller_port=29093)
    broker._render_config()
    text = broker.config_file.read_text()
    settings = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert settings["authorizer.class.name"] == ("org.apache.kafka.metadata.authorizer.StandardAuthorizer")
    assert settings["allow.everyone.if.no.acl.found"] == "false"
    assert settings["super.users"] == "User:admin;User:controller"
    assert settings["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert settings["listeners"] == "CLIENTS://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert settings["listener.security.protocol.map"] == "CLIENTS:SASL_SSL,CONTROLLER:SASL_SSL"
    assert settings["ssl.endpoint.identification.algorithm"] == "https"
    assert settings["ssl.truststore.location"] == str(broker.ca_file)
    assert settings["ssl.keystore.key"].startswith("-----BEGIN PRIVATE KEY-----\\n")
    assert "${" not in text
    assert stat.S_IMODE(broker.config_file.stat().st_mode) == 0o600


def test_template_binds_only_loopback() -> None:
    text = TEMPLATE.read_text()
    assert "127.0.0.1" in text and "0.0.0.0" not in text  # noqa: S104


@pytest.mark.parametrize("password", ["short", "has spaces in it here", 'quote"quote"quote"q'])
def test_unsafe_passwords_are_refused(tmp_path: Path, password: str) -> None:
    with pytest.raises(ValueError, match="password"):
        broker_factory(tmp_path, admin_password=SecretStr(password))


def test_client_settings_feed_the_shared_kafka_config(tmp_path: Path) -> None:
    broker = broker_factory(tmp_path, port=29092)
    conf = producer_config(broker.kafka_settings("intake", "s3cret"), client_id="t")
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["ssl.ca.location"] == str(broker.ca_file)
    assert conf["ssl.endpoint.identification.algorithm"] == "https"  # host names are checked
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.username"] == "intake" and conf["sasl.password"] == "s3cret"
    assert conf["bootstrap.servers"] == "127.0.0.1:29092"
    assert broker.admin_config()["sasl.username"] == "admin"


def test_missing_jars_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="make services"):
        broker_factory(tmp_path).start()


def test_plaintext_clients_get_no_tls_settings(tmp_path: Path) -> None:
    from novamind.platform.settings import KafkaSettings

    conf = producer_config(KafkaSettings(), client_id="t")
    assert conf["security.protocol"] == "PLAINTEXT"
    assert not any(key.startswith(("ssl.", "sasl.")) for key in conf)
