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
    app_id: str | None = None,
    web_port: int = 6066,
    data_dir: str | Path | None = None,
    store: str = "memory://",
) -> faust.App:
    """A Faust app configured from settings; agents are added by the domain packages."""
    kafka = settings.kafka
    app_id = app_id or kafka.topic(APP_ID)  # the prefix isolates groups and changelogs too
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
        # A replica that dies is noticed within seconds and its partitions move on.
        broker_session_timeout=15.0,
        broker_heartbeat_interval=3.0,
        stream_wait_empty=False,
        web_host="127.0.0.1",
        web_port=web_port,
        web_in_thread=False,
        table_cleanup_interval=60.0,
    )


def build_worker(
    settings: Settings, *, web_port: int = 6066, data_dir: str | Path | None = None, store: str = "memory://"
) -> faust.App:
    """The full worker: ingest agents, the twin agent, and their web views."""
    from novamind.mongo import database, mongo_client
    from novamind.producer import EventProducer
    from schemas.codec import AvroCodec
    from schemas.topics import declared_topics
    from workers import views
    from workers.features import agents as ingest_agents
    from workers.twin import agents as twin_agents
    from workers.twin.store import TwinStore

    app = create_app(settings, web_port=web_port, data_dir=data_dir, store=store)
    codec = AvroCodec.from_settings(settings.kafka)
    topics = {
        spec.name: app.topic(settings.kafka.topic(spec.name), internal=False)
        for spec in declared_topics(partitions=settings.kafka.partitions)
    }
    producer = EventProducer(kafka=settings.kafka, client_id=f"{app.conf.id}-outputs")
    entries = ingest_agents.register(app, settings=settings, codec=codec, topics=topics, producer=producer)
    client = mongo_client(settings.mongo, app_name=app.conf.id)
    twin_store = TwinStore(db=database(client, settings.mongo))
    twins = twin_agents.register(
        app, codec=codec, store=twin_store, topics=topics, producer=producer, topic_name=settings.kafka.topic
    )

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # Faust's stub wants a sync receiver
    async def forget_live_state(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Another replica may own these patients now; re-read state from table or store.
        entries.forget()
        twins.clear()

    views.register(app, entries=entries, store=twin_store)
    return app


def run_worker(settings: Settings, *, web_port: int = 6066, data_dir: str | None = None) -> int:
    """Run one replica until SIGTERM/SIGINT (Faust finishes the batch, commits, leaves the group)."""
    store = "rocksdb://" if settings.environment == "production" else "memory://"
    app = build_worker(settings, web_port=web_port, data_dir=data_dir, store=store)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), override_logging=False)
    worker.execute_from_commandline()
    return 0
