"""The twin stage of a replica: ``twin-inputs`` (read committed) to twins, updates and alerts.

One batch: load the twins the batch needs (MongoDB, once per patient while owned), apply the
pure twin functions, publish ``twin-updates``/``twin-alerts`` and wait for their
acknowledgement, upsert the twins with an offset fence, then commit the consumer offsets. A
redelivered input is fenced off by the offset stored with its twin, so a crash anywhere
repeats no effect. Outputs Kafka did not take: nothing was stored or committed, so the
twins applied in memory are forgotten, the output producer replaced and the batch read again.

Model versions: the stage runs the plan of ``settings.twin`` (live version, optional shadow),
re-reading the promoted live version from MongoDB (``twin_versions``) at most every
``plan_refresh_s``; a twin moves to a newly promoted version at its next input. Shadow twins
are stored with their twins and never published; their paired errors are counted in
Prometheus (``novamind_twin_shadow_*``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from novamind.platform import metrics
from novamind.platform.metrics import Step, timed
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from schemas.topics import TopicName
from workers.pipeline.ingest import Inbound
from workers.pipeline.twin import TwinEntry, TwinProcessor
from workers.runtime import clients, monitor
from workers.runtime.outputs import DeliveryFailed, Outputs
from workers.twin.store import TwinStore
from workers.twin.twin import new_twin
from workers.twin.versions import VersionPlan, plan_of, registry

log = structlog.get_logger(__name__)
OUTPUT_FLUSH_TIMEOUT_S = 60.0  # then the twin batch is read again with a fresh producer


class TwinStage:
    """Applies twin inputs; owns the twins cache and the (non-transactional) output producer."""

    def __init__(
        self,
        settings: Settings,
        *,
        codec: AvroCodec,
        store: TwinStore,
        consumer: Consumer,
        alerts: monitor.PipelineAlerts,
        topic_name: Callable[[str], str],
        unprefix: Callable[[str], str],
        positions: Callable[[list[Inbound]], list[TopicPartition]],
        blocking: Callable[..., Awaitable[Any]],
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.store = store
        self.consumer = consumer
        self.alerts = alerts
        self.topic_name = topic_name
        self.unprefix = unprefix
        self.positions = positions
        self._blocking = blocking
        self.versions = registry(settings.twin.versions)
        self.processor = TwinProcessor(codec=codec, plan=self._plan(None), versions=self.versions)
        self._plan_read_at = -float("inf")
        self.twins: dict[str, TwinEntry] = {}
        self.producer = alerts.producer
        self.outputs = Outputs(self.producer, codec=codec, topic_name=topic_name)

    def forget(self, partitions: set[int]) -> None:
        for patient_id in [k for k, e in self.twins.items() if e.partition in partitions]:
            del self.twins[patient_id]

    def _plan(self, promoted: str | None) -> VersionPlan:
        twin = self.settings.twin
        return plan_of(self.versions, live=twin.version, shadow=twin.shadow_version, promoted=promoted)

    async def refresh_plan(self, *, force: bool = False) -> VersionPlan:
        """Take a newly promoted live version (read at most every ``plan_refresh_s``)."""
        now = time.monotonic()
        if not force and now - self._plan_read_at < self.settings.twin.plan_refresh_s:
            return self.processor.plan
        self._plan_read_at = now
        promoted = (await self.store.deployment() or {}).get("live")
        if promoted and self.versions.find(promoted) is None:
            log.error("twin_promoted_version_unknown", promoted=promoted, running=self.processor.plan.live.id)
        plan = self._plan(promoted)
        if plan != self.processor.plan:
            log.info(
                "twin_plan",
                live=plan.live.id,
                live_name=plan.live.name,
                shadow=plan.shadow.id if plan.shadow else None,
                shadow_name=plan.shadow.name if plan.shadow else None,
            )
            self.processor.plan = plan
        return plan

    async def apply(self, messages: list[Inbound]) -> None:
        started = time.perf_counter()
        plan = await self.refresh_plan()
        patients = {m.key.decode("utf-8", "replace"): m.partition for m in messages if m.key}
        loaded = await self.store.load(patients.keys() - self.twins.keys())
        for patient_id, partition in patients.items():
            if patient_id not in self.twins:
                entry = loaded.get(patient_id) or TwinEntry(new_twin(patient_id))
                entry.partition = partition
                self.twins[patient_id] = entry
        with timed(Step.TWIN_APPLY):
            result = self.processor.process(messages, self.twins)
        self.outputs.sent.clear()
        with timed(Step.PUBLISH):
            for alert in result.alerts:
                self.outputs.send(TopicName.TWIN_ALERTS, "TwinAlert", alert["patient_id"].encode(), alert)
            for update in result.updates:
                self.outputs.send(TopicName.TWIN_UPDATES, "TwinUpdate", update["patient_id"].encode(), update)
            for letter in result.dead_letters:
                self.outputs.send(TopicName.PIPELINE_DEADLETTER, "DeadLetter", letter["original_key"], letter)
            try:
                await self._blocking(self.outputs.flush, OUTPUT_FLUSH_TIMEOUT_S)
            except DeliveryFailed as exc:
                await self._read_again(messages, exc)
                return
        snapshots = sum(1 for p in result.changed if self.twins[p].snapshot_due)
        with timed(Step.TWIN_STORE):
            saved = await self.store.save(
                {p: self.twins[p] for p in result.changed}, now=dt.datetime.now(dt.UTC)
            )
        monitor.count_out(self.outputs.sent)
        monitor.count_dead_letters(result.dead_letters, self.unprefix)
        metrics.record_twin_updates(len(result.updates))
        metrics.record_model_versions(snapshots)
        if plan.shadow is not None:
            paired = result.paired
            metrics.record_shadow_pairs(plan.shadow.id, paired.pairs, paired.live_abs, paired.shadow_abs)
        metrics.record_twin_version_change("promoted", len(result.promoted))
        metrics.record_twin_version_change("restored", len(result.restored))
        for alert in result.alerts:
            metrics.record_twin_alert(alert["alert_type"], alert["severity"])
        try:
            await self._blocking(
                lambda: self.consumer.commit(offsets=self.positions(messages), asynchronous=False)
            )
        except KafkaException as exc:  # a rebalance meanwhile: the new owner fences them off
            log.warning("twin_commit_failed", reason=str(exc))
        log.info(
            "twin_batch",
            events=len(messages),
            twins=saved,
            updates=len(result.updates),
            alerts=len(result.alerts),
            skipped=result.skipped,
            shadow_pairs=result.paired.pairs,
            promoted=len(result.promoted),
            restored=result.restored,  # pseudonyms only
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    async def _read_again(self, messages: list[Inbound], exc: DeliveryFailed) -> None:
        """Kafka did not take the batch's outputs (e.g. a producer stuck after a broker
        restart): nothing was stored or committed, so forget the twins applied in memory,
        replace the producer and read the batch again."""
        self.producer.purge()
        self.producer = Producer(clients.output_producer(self.settings))
        self.outputs = Outputs(self.producer, codec=self.codec, topic_name=self.topic_name)
        self.alerts.producer = self.producer
        self.alerts.raise_alert(
            "publish",
            "WARNING",
            "twin outputs were not acknowledged; the batch is read again",
            {"error": str(exc)[:120]},
        )
        for patient_id in {m.key.decode("utf-8", "replace") for m in messages if m.key}:
            self.twins.pop(patient_id, None)
        read = sorted({(m.topic, m.partition) for m in messages})
        committed = await self._blocking(self.consumer.committed, [TopicPartition(t, p) for t, p in read], 60)
        for tp in committed:
            tp.offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(tp)
