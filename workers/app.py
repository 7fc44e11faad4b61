"""The Faust application of the stream workers.

``create_app`` builds the app from settings (no I/O, no import-time side effects); each domain
package registers its agents with ``register(app, ...)``. ``run_worker`` is what the
``novamind worker`` command runs: one replica of the consumer group ``novamind-workers``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust

from novamind.settings import PROJECT_ROOT, KafkaSettings, Settings

APP_ID = "novamind-workers"  # the consumer group: one per service, shared by all replicas


def broker_credentials(kafka: KafkaSettings) -> Any:
    """Faust credentials for a secured cluster, or None for PLAINTEXT."""
    if not kafka.security_protocol.startswith("SASL"):
        return None
    ssl_context = None
    if kafka.security_protocol == "SASL_SSL":
        import ssl

        ssl_context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    return faust.SASLCredentials(
        username=kafka.sasl_username or "",
        password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else "",
        mechanism=kafka.sasl_mechanism,
        ssl_context=ssl_context,
    )


def create_app(
    settings: Settings,
    *,
    app_id: str = APP_ID,
    web_port: int = 6066,
    data_dir: str | Path | None = None,
    store: str = "memory://",
) -> faust.App:
    """A Faust app configured from settings; agents are added by the domain packages."""
    kafka = settings.kafka
    datadir = Path(data_dir or PROJECT_ROOT / ".local" / "workers" / f"{app_id}-{web_port}")
    datadir.parent.mkdir(parents=True, exist_ok=True)
    brokers = [f"kafka://{address.strip()}" for address in kafka.bootstrap_servers.split(",")]
    return faust.App(
        app_id,
        broker=brokers,
        broker_credentials=broker_credentials(kafka),
        store=store,
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        web_host="127.0.0.1",
        web_port=web_port,
        web_in_thread=False,
        table_cleanup_interval=60.0,
    )
