"""One worker replica: a confluent-kafka consumer loop with exactly-once window state.

Each iteration reads a batch from the co-partitioned source topics and ``twin-inputs``:

1. **Ingest** (source records): one Kafka transaction holds the batch's outputs (dead
   letters, daily features, twin inputs), the new window state of every touched patient
   (changelog ``patient-windows``) and the source offsets. A crash anywhere before the commit
   aborts all three, so the next owner restores the state that matches the committed offsets
   and folds the same records again: each takes effect exactly once.
2. **Twin** (``twin-inputs`` records, read committed): apply the pure twin functions, publish
   ``twin-updates``/``twin-alerts``, upsert the twins with an offset fence, then commit the
   offsets. A redelivered input is fenced off by the stored offset.

Item-9 safety alerts do not wait for either stage: :mod:`workers.runtime.safety` watches the
reports topic with its own consumer. Rebalances are handled between batches (never inside a
transaction): revoked partitions' state is dropped, assigned ones are restored first.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from novamind import metrics
from novamind.metrics import Step, timed
from novamind.settings import Settings
from schemas.codec import AvroCodec
from workers.pipeline.ingest import Inbound, IngestProcessor, IngestResult
from workers.pipeline.twin import TwinEntry, TwinProcessor
from workers.runtime import clients, monitor
from workers.runtime.deadline import CallStuck, call_with_deadline
from workers.runtime.outputs import DeliveryFailed, Outputs
from workers.runtime.state import PatientStates, read_changelog, window_config
from workers.runtime.statedir import state_dir
from workers.twin.store import TwinStore
from workers.twin.twin import new_twin

log = structlog.get_logger(__name__)

SOURCE_TOPICS = ("wearable-biometrics", "patient-reports", "ehr-clinical-events")
TWIN_INPUTS = "twin-inputs"
OUTPUT_FLUSH_TIMEOUT_S = 60.0  # then the twin batch is read again with a fresh producer
SEND_OFFSETS_TIMEOUT_S = 30.0
COMMIT_TIMEOUT_S = 60.0
STUCK_MARGIN_S = 10.0  # a transactional call this late past its own timeout is stuck
CHANGELOG = "patient-windows"


def inbound(message: Message) -> Inbound:
    return Inbound(
        message.key(),
        message.value() or b"",
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        message.timestamp()[1],
    )


@dataclass
class Health:
    """What the web views report about this replica."""

    assigned: set[tuple[str, int]] = field(default_factory=set)
    restoring: set[int] = field(default_factory=set)
    restored_records: dict[int, int] = field(default_factory=dict)
    batches: int = 0
    last_batch_at: float = 0.0
    stopping: bool = False

    @property
    def ready(self) -> bool:
        return bool(self.assigned) and not self.restoring and not self.stopping


class Worker:
    """Consumes, folds, checkpoints and publishes until ``stop`` is set."""

    def __init__(self, settings: Settings, *, store: TwinStore, codec: AvroCodec | None = None) -> None:
        self.settings = settings
        self.codec = codec or AvroCodec.from_settings(settings.kafka)
        self.store = store
        self.topic = settings.kafka.topic
        windows = window_config(settings.worker)
        self.state_dir = state_dir(settings)
        self.states = PatientStates(
            self.state_dir.path,
            config=windows,
            cache_patients=settings.worker.state_cache_patients,
            block_cache_bytes=settings.worker.state_block_cache_mb << 20,
        )
        self.ingest = IngestProcessor(codec=self.codec, entries=self.states, config=windows)
        self.twin = TwinProcessor(codec=self.codec)
        self.twins: dict[str, TwinEntry] = {}
        self.health = Health()
        self._events: list[tuple[str, list[TopicPartition]]] = []  # rebalances seen by consume()
        self._committed: dict[tuple[str, int], int] = {}
        self._released: set[tuple[str, int]] = set()  # revoked, state kept until reassigned
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka")
        self.consumer = Consumer(clients.main_consumer(settings))
        self.restorer = Consumer(clients.restore_consumer(settings))
        self.probe = Consumer(clients.offset_probe(settings))
        self.txn_producer = Producer(clients.transactional_producer(settings))
        self.out_producer = Producer(clients.output_producer(settings))
        self.txn_outputs = Outputs(self.txn_producer, codec=self.codec, topic_name=self.topic)
        self.twin_outputs = Outputs(self.out_producer, codec=self.codec, topic_name=self.topic)
        self.alerts = monitor.PipelineAlerts(
            self.out_producer,
            codec=self.codec,
            topic=self.topic("pipeline-alerts"),
            component=f"worker-{clients.replica_id(settings)}",
        )
        store.on_retry = self._store_retrying

    def _store_retrying(self, operation: str, attempt: int, error: str) -> None:
        # Each attempt already waited for server selection: a failed one is an outage.
        self.alerts.raise_alert(
            "twin_store",
            "CRITICAL",
            "MongoDB writes are failing; retrying with backoff",
            {"operation": operation, "attempt": str(attempt), "error": error},
        )

    def unprefix(self, topic: str) -> str:
        return topic.removeprefix(self.settings.kafka.topic_prefix)

    # ---- lifecycle ---------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        await self._txn_call("init_transactions", timeout_s=30)
        await self.store.ensure_indexes()
        topics = [self.topic(t) for t in (*SOURCE_TOPICS, TWIN_INPUTS)]
        self.consumer.subscribe(
            topics,
            on_assign=lambda _c, parts: self._events.append(("assign", parts)),
            on_revoke=lambda _c, parts: self._events.append(("revoke", parts)),
            on_lost=lambda _c, parts: self._events.append(("lost", parts)),
        )
        log.info("worker_started", topics=len(topics), group=clients.group_id(self.settings))
        try:
            while not stop.is_set():
                messages = await self._blocking(
                    self.consumer.consume, self.settings.worker.max_batch, self.settings.worker.poll_timeout_s
                )
                await self._handle_rebalances()
                if messages:
                    await self.process(messages)
                else:
                    await self._commit_markers()
        finally:
            self.health.stopping = True
            await self._blocking(self.consumer.close)  # leaves the group: partitions move at once
            self.restorer.close()
            self.probe.close()
            self.out_producer.flush(30)
            self._executor.shutdown(wait=True)
            self.states.close()
            self.state_dir.cleanup()
            log.info("worker_stopped")

    async def _blocking(self, call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    # ---- rebalances ----------------------------------------------------------------------
    async def _handle_rebalances(self) -> None:
        """Apply the rebalances ``consume`` reported, in order.

        Revoked partitions stay in memory until the next assignment: every rebalance revokes
        everything (eager range assignment), and a partition that comes straight back needs no
        restore because nobody else owned it meanwhile. Lost partitions (the group evicted this
        replica) may have moved on, so their state is dropped at once.
        """
        events, self._events = self._events, []
        for kind, parts in events:
            tps = {(tp.topic, tp.partition) for tp in parts}
            if kind == "assign":
                self._forget(self._released - tps)
                self._released = set()
                self.health.assigned |= tps
                await self._restore({p for t, p in tps if t != self.topic(TWIN_INPUTS)})
                log.info("partitions_assigned", partitions=_describe(tps))
                continue
            self.health.assigned -= tps
            if kind == "lost":
                self._forget(tps)
            else:
                self._released |= tps
            log.info(f"partitions_{kind}", partitions=_describe(tps))

    def _forget(self, tps: set[tuple[str, int]]) -> None:
        twin_topic = self.topic(TWIN_INPUTS)
        self.states.close_partitions({p for t, p in tps if t != twin_topic})
        twin_gone = {p for t, p in tps if t == twin_topic}
        for patient_id in [k for k, e in self.twins.items() if e.partition in twin_gone]:
            del self.twins[patient_id]
        for tp in tps:
            self._committed.pop(tp, None)

    async def _restore(self, partitions: set[int]) -> None:
        """Bring the partitions' local stores up to their changelog: only the records after
        each store's checkpoint are read (all of them for a store seen for the first time)."""
        if not partitions:
            return
        started = time.perf_counter()
        self.health.restoring |= partitions

        def progress(partition: int, records: int, left: int) -> None:
            before = self.health.restored_records.get(partition, 0)
            self.health.restored_records[partition] = records
            metrics.record_restore(partition, max(records - before, 0), left)

        for partition in partitions:
            self.health.restored_records[partition] = 0
        try:
            with timed(Step.RESTORE):
                starts = {p: self.states.start_offset(p) for p in sorted(partitions)}
                reached = await self._blocking(
                    lambda: read_changelog(
                        self.restorer,
                        self.topic(CHANGELOG),
                        starts,
                        probe=self.probe,
                        apply=self.states.apply_changelog,
                        progress=progress,
                    )
                )
                for partition, offset in reached.items():
                    self.states.restored(partition, offset)
        finally:
            self.health.restoring -= partitions
        log.info(
            "state_restored",
            partitions=sorted(partitions),
            full=sorted(p for p, start in starts.items() if start is None),
            records=sum(self.health.restored_records.get(p, 0) for p in partitions),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    # ---- a batch ---------------------------------------------------------------------------
    async def process(self, messages: list[Message]) -> None:
        owned = self.health.assigned
        source: list[Inbound] = []
        twin_inputs: list[Inbound] = []
        for message in messages:
            error = message.error()
            if error is not None:
                log.warning("consume_error", error=error.str())
                continue
            if (message.topic(), message.partition()) not in owned:
                continue  # fetched before a revoke: the new owner reads it again
            m = inbound(message)
            (twin_inputs if m.topic == self.topic(TWIN_INPUTS) else source).append(m)
        monitor.count_in(self.unprefix(m.topic) for m in (*source, *twin_inputs))
        if twin_inputs:  # first: a report's twin update does not wait for this batch's ingest
            await self._apply_twin_inputs(twin_inputs)
        if source:
            await self._ingest(source)
        self._record_lag()
        self.health.batches += 1
        self.health.last_batch_at = time.time()

    async def _ingest(self, messages: list[Inbound]) -> None:
        started = time.perf_counter()
        result = IngestResult()
        self.txn_outputs.sent.clear()
        self.txn_producer.begin_transaction()
        try:
            with timed(Step.DECODE_FOLD):
                self.ingest.fold(messages, result)
                self.ingest.publish_revisions(result)
            with timed(Step.PUBLISH):
                self._send_ingest_outputs(result)
                changes = self.states.changes(result.touched)
                for partition, records in changes.items():
                    for key, value in records.items():
                        self.txn_outputs.send_raw(CHANGELOG, key, value, partition)
            with timed(Step.CHECKPOINT):
                offsets = self._positions(messages)
                metadata = self.consumer.consumer_group_metadata()
                await self._retrying(
                    "send_offsets_to_transaction", offsets, metadata, timeout_s=SEND_OFFSETS_TIMEOUT_S
                )
                await self._retrying("commit_transaction", timeout_s=COMMIT_TIMEOUT_S)
        except (KafkaException, CallStuck) as exc:
            await self._recover(exc)
            return
        with timed(Step.STATE_WRITE):
            self.states.persist(changes, self._changelog_reached(changes))
        monitor.count_out(self.txn_outputs.sent)
        monitor.count_dead_letters(result.dead_letters, self.unprefix)
        if result.late:
            metrics.record_late_events(self.unprefix(messages[0].topic), result.late)
        log.info(
            "ingest_batch",
            events=len(messages),
            patients=len(result.touched),
            dead_letters=len(result.dead_letters),
            features=len(result.features),
            skipped=result.skipped,
            late=result.late,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _changelog_reached(self, changes: dict[int, Any]) -> dict[int, int]:
        """The next changelog offset of each partition written, from the delivery reports of
        the committed transaction."""
        self.txn_producer.poll(0)  # serve the delivery reports of the committed transaction
        topic = self.topic(CHANGELOG)
        last = self.txn_outputs.last_offsets
        return {p: last[(topic, p)] + 1 for p in changes if (topic, p) in last}

    def _send_ingest_outputs(self, result: IngestResult) -> None:
        send = self.txn_outputs.send
        for letter in result.dead_letters:
            send("pipeline-deadletter", "DeadLetter", letter["original_key"], letter)
        for features in result.features:
            send("patient-daily-features", "PatientDailyFeatures", features["patient_id"].encode(), features)
        for name, record in result.twin_inputs:
            send(TWIN_INPUTS, name, record["patient_id"].encode(), record)

    async def _txn_call(self, name: str, *args: Any, timeout_s: float) -> None:
        """A transactional-producer call, given up as stuck ``STUCK_MARGIN_S`` after its own
        timeout (see :mod:`workers.runtime.deadline`)."""
        method = getattr(self.txn_producer, name)
        await call_with_deadline(lambda: method(*args, timeout_s), timeout_s + STUCK_MARGIN_S, name=name)

    async def _retrying(self, name: str, *args: Any, timeout_s: float) -> None:
        """Run a transaction call again while Kafka says the failure is retriable (the broker
        restarting, a coordinator moving), until the transaction would have expired anyway;
        then, on other errors and when the call is stuck, raise for :meth:`_recover`."""
        deadline = time.monotonic() + self.settings.worker.transaction_timeout_ms / 1000
        attempt = 0
        while True:
            try:
                await self._txn_call(name, *args, timeout_s=timeout_s)
                return
            except KafkaException as exc:
                error = exc.args[0]
                if not error.retriable() or time.monotonic() > deadline:
                    raise
                attempt += 1
                if attempt >= 3:
                    self.alerts.raise_alert(
                        "checkpoint",
                        "WARNING",
                        "Kafka is not accepting the batch's transaction; retrying",
                        {"error": error.name(), "attempt": str(attempt)},
                    )
                await asyncio.sleep(min(0.25 * 2**attempt, 5.0))

    async def _recover(self, exc: KafkaException | CallStuck) -> None:
        """A batch's transaction failed: roll it back, forget the window state and read again
        from the committed offsets (the restored state matches them exactly).

        A producer that is stuck in a call or cannot even abort (after a broker restart) is
        replaced: a new one with the same transactional id fences the old one and aborts its
        transaction. Being fenced by another process with our id is fatal: two replicas share
        a name.
        """
        if isinstance(exc, CallStuck):
            self.alerts.raise_alert(
                "checkpoint",
                "WARNING",
                "the transactional producer stopped answering; it is replaced and the batch read again",
                {"call": exc.name, "timeout_s": f"{exc.timeout_s:g}"},
            )
            await self._replace_producer()
        else:
            await self._abort(exc)
        self.states.clear()
        assigned = [TopicPartition(t, p) for t, p in sorted(self.health.assigned)]
        committed = await self._blocking(self.consumer.committed, assigned, 60)
        for tp in committed:
            if tp.offset < 0:
                tp.offset = OFFSET_BEGINNING  # nothing committed yet: where the group starts
            self.consumer.seek(tp)
        await self._restore({p for t, p in self.health.assigned if t != self.topic(TWIN_INPUTS)})

    async def _abort(self, exc: KafkaException) -> None:
        error = exc.args[0]
        fenced = error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED)
        self.alerts.raise_alert(
            "checkpoint",
            "CRITICAL" if fenced else "WARNING",
            "a batch transaction failed and was rolled back",
            {"error": error.name(), "fenced": str(fenced)},
        )
        if fenced or not (error.txn_requires_abort() or error.retriable()):
            raise exc
        try:
            await self._txn_call("abort_transaction", timeout_s=15)
        except (KafkaException, CallStuck):
            await self._replace_producer()

    async def _replace_producer(self) -> None:
        delay, fresh = 1.0, True
        while True:  # the broker may still be coming back: wait for it, do not exit
            if fresh:
                log.warning("transactional_producer_replaced")
                self.txn_producer = Producer(clients.transactional_producer(self.settings))
                self.txn_outputs = Outputs(self.txn_producer, codec=self.codec, topic_name=self.topic)
            try:
                await self._txn_call("init_transactions", timeout_s=60)
                return
            except KafkaException as exc:
                if not exc.args[0].retriable():
                    raise
                fresh = False
                log.warning("init_transactions_retry", error=exc.args[0].name())
            except CallStuck as exc:
                fresh = True  # that producer is lost to its stuck call
                log.warning("init_transactions_retry", error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 15.0)

    async def _retry_twin_batch(self, messages: list[Inbound], exc: DeliveryFailed) -> None:
        """Kafka did not take a twin batch's outputs (e.g. a producer stuck after a broker
        restart): nothing was stored or committed, so forget the twins applied in memory,
        replace the producer and read the batch again."""
        self.out_producer.purge()
        self.out_producer = Producer(clients.output_producer(self.settings))
        self.twin_outputs = Outputs(self.out_producer, codec=self.codec, topic_name=self.topic)
        self.alerts.producer = self.out_producer
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

    def _record_lag(self) -> None:
        """Consumer lag per owned partition, from the high watermarks of the last fetches."""
        lags: dict[tuple[str, int], int] = {}
        owned = [TopicPartition(t, p) for t, p in sorted(self.health.assigned)]
        for tp in self.consumer.position(owned) if owned else []:
            _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                lags[(self.unprefix(tp.topic), tp.partition)] = high - tp.offset
        metrics.set_assignment(lags)

    def _positions(self, messages: list[Inbound]) -> list[TopicPartition]:
        """The offsets to commit for the partitions of ``messages``: the consumer's position,
        which is one past the last record read and past any transaction marker after it."""
        read = sorted({(m.topic, m.partition) for m in messages})
        positions = self.consumer.position([TopicPartition(t, p) for t, p in read])
        last = {(m.topic, m.partition): m.offset for m in messages}
        for tp in positions:  # never behind what was read (a position is unknown after a seek)
            tp.offset = max(tp.offset, last[(tp.topic, tp.partition)] + 1)
            self._committed[(tp.topic, tp.partition)] = tp.offset
        return positions

    async def _commit_markers(self) -> None:
        """When idle, commit twin-input positions that moved past transaction markers only,
        so a caught-up group reports no lag."""
        twin_topic = self.topic(TWIN_INPUTS)
        owned = [TopicPartition(t, p) for t, p in sorted(self.health.assigned) if t == twin_topic]
        if not owned:
            return
        moved = [
            tp
            for tp in self.consumer.position(owned)
            if tp.offset >= 0 and tp.offset > self._committed.get((tp.topic, tp.partition), -1)
        ]
        if not moved:
            return
        try:
            await self._blocking(lambda: self.consumer.commit(offsets=moved, asynchronous=False))
        except KafkaException as exc:
            log.warning("marker_commit_failed", reason=str(exc))
            return
        for tp in moved:
            self._committed[(tp.topic, tp.partition)] = tp.offset

    async def _apply_twin_inputs(self, messages: list[Inbound]) -> None:
        started = time.perf_counter()
        patients = {m.key.decode("utf-8", "replace"): m.partition for m in messages if m.key}
        loaded = await self.store.load(patients.keys() - self.twins.keys())
        for patient_id, partition in patients.items():
            if patient_id not in self.twins:
                entry = loaded.get(patient_id) or TwinEntry(new_twin(patient_id))
                entry.partition = partition
                self.twins[patient_id] = entry
        with timed(Step.TWIN_APPLY):
            result = self.twin.process(messages, self.twins)
        self.twin_outputs.sent.clear()
        with timed(Step.PUBLISH):
            for alert in result.alerts:
                self.twin_outputs.send("twin-alerts", "TwinAlert", alert["patient_id"].encode(), alert)
            for update in result.updates:
                self.twin_outputs.send("twin-updates", "TwinUpdate", update["patient_id"].encode(), update)
            for letter in result.dead_letters:
                self.twin_outputs.send("pipeline-deadletter", "DeadLetter", letter["original_key"], letter)
            try:
                await self._blocking(self.twin_outputs.flush, OUTPUT_FLUSH_TIMEOUT_S)
            except DeliveryFailed as exc:
                await self._retry_twin_batch(messages, exc)
                return
        snapshots = sum(1 for p in result.changed if self.twins[p].snapshot_due)
        with timed(Step.TWIN_STORE):
            saved = await self.store.save(
                {p: self.twins[p] for p in result.changed}, now=dt.datetime.now(dt.UTC)
            )
        monitor.count_out(self.twin_outputs.sent)
        monitor.count_dead_letters(result.dead_letters, self.unprefix)
        metrics.record_twin_updates(len(result.updates))
        metrics.record_model_versions(snapshots)
        for alert in result.alerts:
            metrics.record_twin_alert(alert["alert_type"], alert["severity"])
        try:
            await self._blocking(
                lambda: self.consumer.commit(offsets=self._positions(messages), asynchronous=False)
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
            ms=round((time.perf_counter() - started) * 1000, 1),
        )


def _describe(tps: set[tuple[str, int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for topic, partition in sorted(tps):
        out.setdefault(topic, []).append(partition)
    return out
