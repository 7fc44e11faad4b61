"""The item-9 watch: safety alerts straight from the source topics, never behind a backlog.

A replica runs one watch per topic that carries assessment results (``SAFETY_TOPICS``:
``patient-reports`` from the intake, ``ehr-clinical-events`` from the FHIR connector), each
with a consumer of its own in the group ``novamind-workers-safety``. A watch publishes the
ITEM9_SAFETY alert of every PHQ-9 with item 9 >= 1, and of every PHQ9_ITEM9 screen answered
>= 1, as soon as it is read, whatever is queued on the biometric topic or on the other source
topic. It holds no state, so it needs no restore. Offsets are
committed after Kafka has acknowledged the alerts (at least once; an alert's id is derived from
its report, so consumers can drop a repeat). The twin records the same alert when it folds the
report in, without publishing it again. When the schema registry cannot be reached (a report
in the Confluent framing whose schema is not cached yet), the batch is read again until it can:
no report is skipped.
"""

from __future__ import annotations

import threading
import time

import structlog
from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from novamind.platform import metrics
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from schemas.exceptions import RegistryError
from schemas.topics import SAFETY_TOPICS, TopicName
from workers.pipeline.ingest import safety_alerts_of
from workers.runtime import clients
from workers.runtime.outputs import Outputs
from workers.runtime.worker import inbound

log = structlog.get_logger(__name__)
REGISTRY_RETRY_S = 1.0
WAIT_S = 1.0  # an idle watch wakes this often to see ``stop``; a record ends the wait at once
MAX_BATCH = 500


class SafetyWatch:
    """Reads one of :data:`~schemas.topics.SAFETY_TOPICS` and publishes its item-9 alerts."""

    def __init__(
        self, settings: Settings, *, codec: AvroCodec, source: TopicName = TopicName.PATIENT_REPORTS
    ) -> None:
        if source not in SAFETY_TOPICS:
            raise ValueError(f"{source} carries no assessment results")
        self.codec = codec
        self.consumer = Consumer(clients.safety_consumer(settings, source))
        self.outputs = Outputs(
            Producer(clients.output_producer(settings)), codec=codec, topic_name=settings.kafka.topic
        )
        self.topic = settings.kafka.topic(source)
        self.alerts_sent = 0

    def run(self, stop: threading.Event) -> None:
        self.consumer.subscribe([self.topic])
        try:
            while not stop.is_set():
                first = self.consumer.poll(WAIT_S)  # returns as soon as a record is fetched
                if first is None:
                    continue
                queued = self.consumer.consume(MAX_BATCH - 1, timeout=0)  # what came with it
                batch = [m for m in (first, *queued) if m.error() is None]
                if not batch:
                    continue
                started = time.perf_counter()
                try:
                    alerts = safety_alerts_of(self.codec, [inbound(m) for m in batch])
                except RegistryError as exc:
                    log.warning(
                        "safety_registry_unavailable",
                        topic=self.topic,
                        reason=str(exc),
                        retry_s=REGISTRY_RETRY_S,
                    )
                    self._rewind(batch)
                    stop.wait(REGISTRY_RETRY_S)
                    continue
                for alert in alerts:
                    self.outputs.send(TopicName.TWIN_ALERTS, "TwinAlert", alert["patient_id"].encode(), alert)
                self.outputs.flush()
                try:
                    self.consumer.commit(asynchronous=False)
                except KafkaException as exc:  # a rebalance: the batch is read again, alerts repeat
                    log.warning("safety_commit_failed", reason=str(exc))
                self.alerts_sent += len(alerts)
                for alert in alerts:
                    metrics.record_twin_alert(alert["alert_type"], alert["severity"])
                if alerts:
                    log.info(
                        "safety_alerts",
                        topic=self.topic,
                        alerts=len(alerts),
                        ms=round((time.perf_counter() - started) * 1000, 1),
                    )
        finally:
            self.consumer.close()

    def _rewind(self, batch: list[Message]) -> None:
        """Seek each partition of ``batch`` back to its first record, to read it again."""
        first: dict[int, int] = {}
        for message in batch:
            partition, offset = message.partition() or 0, message.offset() or 0
            first[partition] = min(offset, first.get(partition, offset))
        for partition, offset in first.items():
            self.consumer.seek(TopicPartition(self.topic, partition, offset))
