"""A secured local Kafka broker: TLS, SASL/SCRAM-SHA-512 authentication and ACL authorisation.

The development twin of a production cluster's security settings, started from the same jars
as the normal local broker (``.local/kafka/libs``) with ``deploy/local/secure``'s configuration,
on its own ports and data folder, so it never disturbs the broker of ``make services``.
The admin's SCRAM credential is written into the metadata log when the storage is formatted
(``StorageTool format --add-scram``); services' credentials are created afterwards through the
admin client (:func:`novamind.platform.privacy.acls.create_scram_users`).

Every listener is SASL_SSL: the broker presents a certificate for ``localhost``/``127.0.0.1``
signed by a CA made for its folder (:func:`novamind.platform.privacy.pki.local_pki`, ``<home>/tls``), and
its clients verify the certificate and the host name against that CA (:attr:`SecureBroker.ca_file`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from string import Template
from typing import Any

from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from novamind.app.exceptions import ServiceError
from novamind.app.localservices import (
    DEPLOY_LOCAL,
    ManagedServer,
    _port_open,
    _require_free_port,
    _run_or_explain,
    new_cluster_id,
)
from novamind.platform.privacy.pki import TlsFiles, local_pki
from novamind.platform.settings import KafkaSettings

SECURE_DIR = DEPLOY_LOCAL / "secure"
TEMPLATE = SECURE_DIR / "server.properties.template"
LOG4J = DEPLOY_LOCAL / "kafka" / "log4j2.yaml"
MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"
# Characters safe inside the JAAS line and the StorageTool's ``[name=..,password=..]`` syntax.
_SAFE_SECRET = re.compile(r"^[A-Za-z0-9_\-.~]{16,}$")


class SecureBroker(ManagedServer):
    """Start, stop and connect to one secured KRaft broker+controller."""

    server_name = "the secured broker"

    def __init__(
        self,
        *,
        home: Path,
        kafka_libs: Path,
        admin_password: SecretStr,
        controller_password: SecretStr,
        port: int = 19092,
        controller_port: int = 19093,
        heap: str = "512m",
        start_timeout_s: float = 90.0,
    ) -> None:
        super().__init__()
        for name, secret in (("admin", admin_password), ("controller", controller_password)):
            if not _SAFE_SECRET.match(secret.get_secret_value()):
                raise ValueError(
                    f"the {name} password must be 16+ characters of [A-Za-z0-9_-.~] "
                    "(use secrets.token_urlsafe)"
                )
        self.home = home.resolve()
        self.kafka_libs = kafka_libs.resolve()
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.start_timeout_s = start_timeout_s
        self._admin_password = admin_password
        self._controller_password = controller_password
        self.data_dir = self.home / "data"
        self.log_dir = self.home / "logs"
        self.config_file = self.home / "server.properties"
        self.tls_dir = self.home / "tls"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def tls(self) -> TlsFiles:
        """The broker's certificate files (made on first use)."""
        return local_pki(self.tls_dir, common_name="NOVAMIND secured broker CA")

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients verify the broker with."""
        return self.tls.ca_cert

    # -- clients --------------------------------------------------------------------------------

    def kafka_settings(self, username: str, password: SecretStr | str) -> KafkaSettings:
        """Settings of a client authenticating as ``username`` (feed them to novamind.platform.kafka)."""
        secret = password if isinstance(password, SecretStr) else SecretStr(password)
        return KafkaSettings(
            bootstrap_servers=self.bootstrap,
            security_protocol="SASL_SSL",
            sasl_mechanism=MECHANISM,
            sasl_username=username,
            sasl_password=secret,
            ssl_cafile=self.ca_file,
        )

    def client_config(self, username: str, password: SecretStr | str) -> dict[str, Any]:
        """A bare confluent-kafka configuration for ``username``."""
        secret = password.get_secret_value() if isinstance(password, SecretStr) else password
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(self.ca_file),
            "sasl.mechanism": MECHANISM,
            "sasl.username": username,
            "sasl.password": secret,
        }

    def admin_config(self) -> dict[str, Any]:
        return self.client_config(ADMIN, self._admin_password)

    def admin_settings(self) -> KafkaSettings:
        """Settings of the admin (a super user: topics, users, ACLs)."""
        return self.kafka_settings(ADMIN, self._admin_password)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Format the storage on first use (with the admin's SCRAM credential), start the
        broker, and return once the admin can list topics."""
        if not any(self.kafka_libs.glob("kafka_2.13-*.jar")):
            raise ServiceError(f"no Kafka jars in {self.kafka_libs}: run `make services` once to fetch them")
        _require_free_port(self.port, "the secured Kafka broker", "a different port")
        _require_free_port(self.controller_port, "the secured Kafka controller", "a different port")
        for folder in (self.data_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._render_config()
        self._format_storage()
        command = [
            "java",
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:ActiveProcessorCount=2",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.log_dir}",
            f"-Dlog4j2.configurationFile={LOG4J}",
            "-cp",
            f"{self.kafka_libs}/*",
            "kafka.Kafka",
            str(self.config_file),
        ]
        self._launch(
            command,
            output=self.log_dir / "stdout.log",
            cwd=self.home,
            log=self.log_dir / "server.log",
            answers=self._admin_answers,
            timeout_s=self.start_timeout_s,
        )

    # -- internals ------------------------------------------------------------------------------

    def _render_config(self) -> None:
        tls = self.tls
        text = Template(TEMPLATE.read_text()).substitute(
            TLS_CERTIFICATE_CHAIN=_property_value(tls.server_cert.read_text()),
            TLS_PRIVATE_KEY=_property_value(tls.server_key.read_text()),
            TLS_CA_FILE=tls.ca_cert,
            KAFKA_PORT=self.port,
            CONTROLLER_PORT=self.controller_port,
            DATA_DIR=self.data_dir,
            ADMIN_PASSWORD=self._admin_password.get_secret_value(),
            CONTROLLER_PASSWORD=self._controller_password.get_secret_value(),
        )
        # The file holds passwords: readable by the owner only, from its creation on.
        fd = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)

    def _format_storage(self) -> None:
        if (self.data_dir / "meta.properties").exists():
            return  # formatted before; the credentials are already in the metadata log
        cluster_id = new_cluster_id()
        scram = f"{MECHANISM}=[name={ADMIN},password={self._admin_password.get_secret_value()}]"
        _run_or_explain(
            [
                "java",
                "-cp",
                f"{self.kafka_libs}/*",
                f"-Dlog4j2.configurationFile={LOG4J}",
                f"-Dkafka.logs.dir={self.log_dir}",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.config_file),
                "--add-scram",
                scram,
            ],
            what="formatting the secured broker's KRaft storage",
            advice=f"remove {self.data_dir} if it holds data of another cluster",
        )

    def _admin_answers(self) -> bool:
        """True when the admin can list topics."""
        if not _port_open(self.bootstrap):
            return False
        admin = AdminClient({**self.admin_config(), "log_level": 0})
        try:
            admin.list_topics(timeout=2)
        except Exception:
            return False  # not ready yet; asked again until the start-up deadline
        return True


def _property_value(pem: str) -> str:
    """A PEM block as one Java properties value (its line breaks as ``\\n`` escapes)."""
    return pem.strip().replace("\n", "\\n")
