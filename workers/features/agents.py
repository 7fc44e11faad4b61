"""Ingest agents: one per source topic, decoding, validating and windowing by event time.

Each agent is a thin loop over batches; :class:`workers.pipeline.ingest.IngestProcessor`
holds the logic. Outputs: dead letters, daily features, immediate item-9 alerts and the
ordered twin inputs. Per-patient state lives in the changelog-backed table ``patient-windows``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, cast

import faust
import structlog
from faust.streams import Stream
from faust.types import StreamT

from novamind.producer import EventProducer
from novamind.settings import Settings
from schemas.codec import AvroCodec
from workers.features.patient import DEFAULT_WINDOWS
from workers.pipeline.faustio import Publisher, TableCache, inbound
from workers.pipeline.ingest import IngestProcessor, IngestResult, PatientEntry, safety_alerts_of

log = structlog.get_logger(__name__)
SOURCE_TOPICS = ("wearable-biometrics", "patient-reports", "ehr-clinical-events")
# Reports are few and urgent (item-9 safety alerts): small batches, short waits.
BATCHING = {"patient-reports": (200, 0.05)}
DEFAULT_BATCHING = (4000, 0.5)
CHUNK = 400  # events folded between yields to the event loop


def register(
    app: faust.App,
    *,
    settings: Settings,
    codec: AvroCodec,
    topics: dict[str, faust.TopicT],
    producer: EventProducer,
) -> TableCache[PatientEntry]:
    table = app.Table(
        "patient-windows", default=None, key_type=str, value_type=bytes, partitions=settings.kafka.partitions
    )
    entries: TableCache[PatientEntry] = TableCache(
        table,
        load=lambda raw: PatientEntry.from_dict(json.loads(raw), DEFAULT_WINDOWS),
        dump=lambda entry: json.dumps(entry.to_dict(), separators=(",", ":")).encode(),
    )
    processor = IngestProcessor(codec=codec, entries=entries)
    # The agents share each patient's state: a state is persisted only with the outputs of
    # every event folded into it, so no agent may persist another's half-published batch.
    state_lock = asyncio.Lock()

    def make_agent(source: str) -> Any:
        batch_size, within = BATCHING.get(source, DEFAULT_BATCHING)

        async def ingest(stream: StreamT[bytes]) -> None:
            concrete = cast(Stream[bytes], stream)  # take_events() lives on the concrete stream
            publisher = Publisher(codec=codec, producer=producer, topic_name=settings.kafka.topic)
            async for events in concrete.take_events(batch_size, within=within):
                started = time.perf_counter()
                messages = inbound(events)
                alerts = safety_alerts_of(codec, messages) if source == "patient-reports" else []
                for alert in alerts:  # safety first: before waiting for anything else
                    publisher.send("twin-alerts", "TwinAlert", alert["patient_id"].encode(), alert)
                if alerts:
                    await publisher.flush()
                result = IngestResult()
                async with state_lock:  # one agent at a time folds, publishes and persists
                    for start in range(0, len(messages), CHUNK):
                        processor.fold(messages[start : start + CHUNK], result)
                        await asyncio.sleep(0)  # the reports agent can raise alerts meanwhile
                    processor.publish_revisions(result)
                    await _publish(publisher, result)
                    entries.persist(concrete, events, result.touched)
                log.info(
                    "ingest_batch",
                    topic=source,
                    events=len(events),
                    patients=len(result.touched),
                    dead_letters=len(result.dead_letters),
                    features=len(result.features),
                    alerts=len(alerts),
                    skipped=result.skipped,
                    late=result.late,
                    ms=round((time.perf_counter() - started) * 1000, 1),
                )

        ingest.__name__ = f"ingest_{source.replace('-', '_')}"
        return ingest

    for source in SOURCE_TOPICS:
        app.agent(topics[source], name=f"ingest-{source}")(make_agent(source))
    return entries


async def _publish(publisher: Publisher, result: IngestResult) -> None:
    """Send a batch's outputs and wait until Kafka has them all."""
    for letter in result.dead_letters:
        publisher.send("pipeline-deadletter", "DeadLetter", letter["original_key"], letter)
    for features in result.features:
        publisher.send(
            "patient-daily-features", "PatientDailyFeatures", features["patient_id"].encode(), features
        )
    for name, record in result.twin_inputs:
        publisher.send("twin-inputs", name, record["patient_id"].encode(), record)
    await publisher.flush()
