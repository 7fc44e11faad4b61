"""One worker replica: a confluent-kafka consumer loop with exactly-once window state.

The loop delegates to named owners: :class:`~workers.runtime.ownership.Ownership` and
:class:`~workers.runtime.ownership.Restorer` (partitions and their state),
:class:`~workers.runtime.state.PatientStates` (the window state cache and local stores),
:class:`~workers.runtime.transactions.Checkpointer` (the transactional producer) and
:class:`~workers.runtime.twin_stage.TwinStage` (twin inputs to twins). One iteration:

1. ``consume`` a batch from the co-partitioned source topics and ``twin-inputs`` (a batch of
   wearable samples alone lingers up to ``wearable_linger_s`` for more, see :func:`linger`);
2. apply rebalances it reported (after the previous batch's commit has settled);
3. **twin** inputs first, so a report's twin update does not wait for this batch's ingest;
4. **ingest**: fold the source records into the windows (pure, in memory);
5. **settle** the previous batch's transaction (its commit ran while 1-4 did): on success
   its state parts go to the local stores; on failure everything in memory is forgotten
   and the partitions are read again from the committed offsets, this batch included;
6. open this batch's transaction: dead letters, daily features, twin inputs, the changed
   state parts (changelog ``patient-windows``; patients changed only by journaled samples may
   be held back, with a replay floor, :mod:`workers.runtime.deferred`) and the source offsets;
   its commit starts and runs while the next batch is consumed and folded.

A crash anywhere before a commit aborts outputs, state and offsets together, so the next
owner restores the state that matches the committed offsets and folds the same records
again: each takes effect exactly once. Item-9 safety alerts do not wait for any of this:
:mod:`workers.runtime.safety` watches the topics that carry assessment results with consumers
of its own.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

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

from novamind.platform import metrics
from novamind.platform.metrics import Step, timed
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from schemas.topics import SOURCE_TOPICS, TopicName
from workers.pipeline.ingest import Inbound, IngestProcessor, IngestResult
from workers.runtime import clients, monitor
from workers.runtime.consumer_thread import ConsumerThread
from workers.runtime.deadline import CallStuck
from workers.runtime.ownership import CHANGELOG, Ownership, Partition, Restorer
from workers.runtime.state import Changes, PatientStates, window_config
from workers.runtime.statedir import state_dir
from workers.runtime.transactions import Checkpointer
from workers.runtime.twin_stage import TwinStage
from workers.twin.store import TwinStore

log = structlog.get_logger(__name__)

TWIN_INPUTS = TopicName.TWIN_INPUTS
WEARABLE = TopicName.WEARABLE_BIOMETRICS
LINGER_SLICE_S = 0.1  # while lingering, a record of another topic ends the wait this soon
LINGER_SAMPLES_PER_PATIENT = 5  # a batch this dense stops lingering: the per-patient cost is spread
# Errors that mean "the brokers are not there right now" rather than "this request is wrong";
# after a broker restart the group coordinator answers NOT_COORDINATOR until it has loaded.
TRANSIENT = frozenset(
    {
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)
REVOKE_WAIT_S = 120.0  # longer than a transactional call is allowed before it counts as stuck


def worth_retrying(error: KafkaError) -> bool:
    """True when a failed request should be sent again after a pause."""
    return error.code() in TRANSIENT or error.retriable()


async def _run_in(executor: ThreadPoolExecutor, call: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(executor, call, *args)


def linger(
    batch: list[Message],
    consume: Callable[[int, float], list[Message]],
    *,
    wearable: str,
    max_batch: int,
    linger_s: float,
    interrupted: Callable[[], bool],
) -> list[Message]:
    """``batch``, grown for up to ``linger_s`` while it holds wearable samples alone and fewer
    than ``LINGER_SAMPLES_PER_PATIENT`` per patient: folding each patient's samples of a few
    seconds together costs far less than folding them one by one, and a batch that already has
    that many (a backlog) gains nothing by waiting. A record of any other topic (reports, EHR
    events, twin inputs), a full batch, a rebalance or a stop (``interrupted``) ends the wait
    at once, or within ``LINGER_SLICE_S`` of its arrival. Item-9 alerts never wait: the safety
    watch has consumers of its own. Runs on the consumer's thread, so a slice that brings a
    few records wakes neither the event loop nor a future."""
    deadline = time.monotonic() + linger_s
    more = batch
    patients: set[bytes | None] = set()
    while batch and len(batch) < max_batch and not interrupted():
        if not all(m.topic() == wearable and m.error() is None for m in more):
            break
        patients.update(m.key() for m in more)
        if len(batch) >= LINGER_SAMPLES_PER_PATIENT * len(patients):
            break
        left = deadline - time.monotonic()
        if left <= 0:
            break
        more = consume(max_batch - len(batch), min(left, LINGER_SLICE_S))
        batch.extend(more)
    return batch


def batch_floors(messages: list[Inbound]) -> dict[int, dict[str, int]]:
    """The lowest offset of each partition and topic in a batch."""
    floors: dict[int, dict[str, int]] = {}
    for m in messages:
        floor = floors.setdefault(m.partition, {})
        if m.offset < floor.get(m.topic, m.offset + 1):
            floor[m.topic] = m.offset
    return floors


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

    ownership: Ownership = field(default_factory=Ownership)
    batches: int = 0
    last_batch_at: float = 0.0
    stopping: bool = False

    @property
    def assigned(self) -> set[Partition]:
        return self.ownership.assigned

    @property
    def restoring(self) -> set[int]:
        return self.ownership.restoring

    @property
    def ready(self) -> bool:
        return bool(self.assigned) and not self.restoring and not self.stopping


@dataclass
class InFlight:
    """A batch whose transaction is committing while the next batch is processed."""

    task: asyncio.Task[None]
    changes: Changes
    messages: list[Inbound]
    result: IngestResult
    started: float


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
            write_delay_s=settings.worker.state_write_delay_s,
        )
        self.ingest = IngestProcessor(codec=self.codec, entries=self.states, config=windows)
        self.health = Health()
        self.ownership = self.health.ownership
        self._committed: dict[tuple[str, int], int] = {}
        self._replay_until: dict[tuple[str, int], int] = {}  # source records read again after a restore
        self._inflight: InFlight | None = None
        self._commit_idle = threading.Event()  # no transactional call in flight
        self._commit_idle.set()
        self._restores: set[asyncio.Task[None]] = set()
        self._consumer_thread = ConsumerThread()
        self._restore_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="restore")
        self.consumer = Consumer(clients.main_consumer(settings))
        self.restorer = Restorer(
            states=self.states,
            ownership=self.ownership,
            restorer=Consumer(clients.restore_consumer(settings)),
            probe=Consumer(clients.offset_probe(settings)),
            topic=self.topic(CHANGELOG),
            blocking=partial(_run_in, self._restore_executor),
        )
        self.alerts = monitor.PipelineAlerts(
            Producer(clients.output_producer(settings)),
            codec=self.codec,
            topic=self.topic(TopicName.PIPELINE_ALERTS),
            component=f"worker-{clients.replica_id(settings)}",
        )
        self.checkpointer = Checkpointer(
            settings, codec=self.codec, topic_name=self.topic, alerts=self.alerts
        )
        self.twin = TwinStage(
            settings,
            codec=self.codec,
            store=store,
            consumer=self.consumer,
            alerts=self.alerts,
            topic_name=self.topic,
            unprefix=self.unprefix,
            positions=self._positions,
            blocking=self._blocking,
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
        await self.checkpointer.init()
        await self.store.ensure_indexes()
        topics = [self.topic(t) for t in (*SOURCE_TOPICS, TWIN_INPUTS)]
        self.consumer.subscribe(topics, **self.ownership.listeners(self._wait_commit_settled))
        log.info("worker_started", topics=len(topics), group=clients.group_id(self.settings))
        try:
            while not stop.is_set():
                messages = await self._consume(stop)
                if self.ownership.events:
                    await self._settle()  # rebalances are applied with no transaction open
                    await self._restored()
                    await self.ownership.apply(forget=self._forget, restore=self._restore)
                if messages:
                    await self.process(messages)
                else:
                    await self._settle()
                    await self._commit_markers()
            await self._settle()
            await self._write_held()
        finally:
            self.health.stopping = True
            await self._restored()
            # leaves the group, so its partitions move at once (a static member stays until
            # the session timeout, for its restart to take them back without a rebalance)
            await self._blocking(self.consumer.close)
            self.restorer.restorer.close()
            self.restorer.probe.close()
            self.twin.producer.flush(30)
            self._consumer_thread.shutdown()
            self._restore_executor.shutdown(wait=True)
            self.states.close()
            self.state_dir.cleanup()
            log.info("worker_stopped")

    async def _blocking(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call`` on the consumer's thread; a batch lingering there stops waiting for it."""
        return await self._consumer_thread.call(call, *args)

    async def _consume(self, stop: asyncio.Event) -> list[Message]:
        """A batch, consumed and lingered for on the consumer's thread in one call; a call
        queued for that thread meanwhile (a restore's committed offsets) ends the linger."""
        worker = self.settings.worker
        consume = self.consumer.consume

        def gather() -> list[Message]:
            return linger(
                consume(worker.max_batch, worker.poll_timeout_s),
                consume,
                wearable=self.topic(WEARABLE),
                max_batch=worker.max_batch,
                linger_s=worker.wearable_linger_s,
                interrupted=lambda: (
                    bool(self.ownership.events) or self._consumer_thread.wanted() or stop.is_set()
                ),
            )

        return cast(list[Message], await self._consumer_thread.linger(gather))

    # ---- ownership -----------------------------------------------------------------------
    def _forget(self, tps: set[Partition]) -> None:
        twin_topic = self.topic(TWIN_INPUTS)
        self.states.close_partitions({p for t, p in tps if t != twin_topic})
        self.twin.forget({p for t, p in tps if t == twin_topic})
        for tp in tps:
            self._committed.pop(tp, None)
            self._replay_until.pop(tp, None)

    async def _restore(self, tps: set[Partition], *, wait: bool = False) -> None:
        """Restore the window state of newly owned partitions. Unless ``wait``, it runs in the
        background: their source partitions are paused (records already fetched are skipped
        and read again), while the twin stage and the other partitions go on."""
        partitions = {p for t, p in tps if t != self.topic(TWIN_INPUTS)} - self.ownership.restoring
        if wait:
            await self.restorer.restore(partitions)
        elif partitions:
            paused = [TopicPartition(self.topic(t), p) for t in SOURCE_TOPICS for p in sorted(partitions)]
            self.consumer.pause(paused)
            self.ownership.restoring |= partitions  # from now on their records wait
            self._restores.add(asyncio.create_task(self._restore_then_resume(partitions, paused)))

    async def _restore_then_resume(self, partitions: set[int], paused: list[TopicPartition]) -> None:
        await self.restorer.restore(partitions)
        try:  # from the committed offsets: what was fetched before the pause was skipped
            committed = await self._blocking(self.consumer.committed, paused, 60)
            # a rebalance during the restore may have moved some away: seeking one fails, and
            # the partitions that stayed (not restored again: they were restoring) would stay paused
            owned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
            kept = [tp for tp in committed if (tp.topic, tp.partition) in owned]
            self._seek_from(kept)
            self.consumer.resume([TopicPartition(tp.topic, tp.partition) for tp in kept])
        except KafkaException as exc:  # revoked meanwhile: the next assignment handles them
            log.warning("resume_after_restore_failed", reason=str(exc))

    def _seek_from(self, committed: list[TopicPartition]) -> None:
        """Seek each partition to its committed offset, or back to its replay floor: the samples
        folded into memory and committed, but not written to the changelog yet
        (:mod:`workers.runtime.deferred`), are folded again; their outputs were committed."""
        for tp in committed:
            key = (tp.topic, tp.partition)
            self._replay_until.pop(key, None)
            if tp.offset < 0:
                tp.offset = OFFSET_BEGINNING  # nothing committed yet: where the group starts
            elif tp.topic != self.topic(TWIN_INPUTS):
                floor = (self.states.replay_floor(tp.partition) or {}).get(tp.topic)
                if floor is not None and floor < tp.offset:
                    self._replay_until[key] = tp.offset
                    tp.offset = floor
            self.consumer.seek(tp)
        if self._replay_until:
            log.info("replay_from_floor", partitions=len(self._replay_until))

    async def _restored(self) -> None:
        """Wait for background restores (before a rebalance, a recovery or a stop)."""
        while self._restores:
            await self._restores.pop()

    # ---- a batch ---------------------------------------------------------------------------
    async def process(self, messages: list[Message]) -> None:
        owned = self.health.assigned
        restoring = self.ownership.restoring
        twin_topic = self.topic(TWIN_INPUTS)
        source: list[Inbound] = []
        replay: list[Inbound] = []
        replaying = self._replay_until
        twin_inputs: list[Inbound] = []
        for message in messages:
            error = message.error()
            if error is not None:
                log.warning("consume_error", error=error.str())
                continue
            if (message.topic(), message.partition()) not in owned:
                continue  # fetched before a revoke: the new owner reads it again
            m = inbound(message)
            if m.topic == twin_topic:
                twin_inputs.append(m)
            elif m.partition not in restoring:  # else read again once restored
                if replaying and m.offset < replaying.get((m.topic, m.partition), -1):
                    replay.append(m)
                else:
                    source.append(m)
        monitor.count_in(self.unprefix(m.topic) for m in (*source, *twin_inputs))
        if twin_inputs:  # first: a report's twin update does not wait for this batch's ingest
            await self.twin.apply(twin_inputs)
        if source or replay:
            await self._ingest(source, replay)
        else:
            await self._settle()
        self._record_lag()
        self.health.batches += 1
        self.health.last_batch_at = time.time()

    async def _ingest(self, messages: list[Inbound], replay: list[Inbound]) -> None:
        """Fold ``messages`` and open their transaction; ``replay`` (records before the committed
        offsets, read again from a replay floor) is folded first and its outputs dropped."""
        started = time.perf_counter()
        result = IngestResult()
        with timed(Step.DECODE_FOLD):
            if replay:
                again = IngestResult()
                self.ingest.fold(replay, again)
                self.ingest.publish_revisions(again)
                result.touched.update(again.touched)
            self.ingest.fold(messages, result)
            self.ingest.publish_revisions(result)
        if replay:
            messages = replay + messages  # their offsets and floors count too
        if not await self._settle():
            return  # the previous batch failed: this one is read again from the committed offsets
        outputs = self.checkpointer.begin()
        with timed(Step.PUBLISH):
            send = outputs.send
            for letter in result.dead_letters:
                send(TopicName.PIPELINE_DEADLETTER, "DeadLetter", letter["original_key"], letter)
            for features in result.features:
                key = features["patient_id"].encode()
                send(TopicName.PATIENT_DAILY_FEATURES, "PatientDailyFeatures", key, features)
            for name, record in result.twin_inputs:
                send(TWIN_INPUTS, name, record["patient_id"].encode(), record)
            floors = batch_floors(messages) if self.states.deferred.delay_s > 0 else None
            changes = self.states.changes(result.touched, floors, time.monotonic())
            for partition, records in changes.items():
                outputs.send_records(CHANGELOG, partition, records)
        offsets = self._positions(messages)
        metadata = self.consumer.consumer_group_metadata()
        self._commit_idle.clear()
        task = asyncio.create_task(self.checkpointer.commit(offsets, metadata))
        task.add_done_callback(lambda _t: self._commit_idle.set())
        self._inflight = InFlight(task, changes, messages, result, started)

    async def _write_held(self) -> None:
        """On a graceful stop, write every patient whose journal is held back, in one last
        transaction, so that the next owner has nothing to read again."""
        if not self.states.deferred.waiting:
            return
        started = time.perf_counter()
        outputs = self.checkpointer.begin()
        changes = self.states.changes({}, {}, math.inf)
        for partition, records in changes.items():
            outputs.send_records(CHANGELOG, partition, records)
        task = asyncio.create_task(self.checkpointer.commit([], None))
        self._inflight = InFlight(task, changes, [], IngestResult(), started)
        await self._settle()

    def _wait_commit_settled(self) -> None:
        """On the consume thread, when partitions are revoked: let the commit in flight finish
        (the event loop drives it meanwhile) before they go; its outcome is read by
        :meth:`_settle`."""
        if not self._commit_idle.wait(REVOKE_WAIT_S):
            log.warning("revoke_with_commit_in_flight", waited_s=REVOKE_WAIT_S)

    async def _settle(self) -> bool:
        """Wait for the batch in flight; True if it committed (or none was in flight)."""
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return True
        try:
            with timed(Step.CHECKPOINT):
                await inflight.task
        except (KafkaException, CallStuck) as exc:
            await self._recover(exc)
            return False
        with timed(Step.STATE_WRITE):
            reached = self.checkpointer.reached(self.topic(CHANGELOG), inflight.changes)
            self.states.persist(inflight.changes, reached, inflight.result.touched)
        result = inflight.result
        monitor.count_out(self.checkpointer.outputs.sent)
        monitor.count_dead_letters(result.dead_letters, self.unprefix)
        if result.late:
            metrics.record_late_events(self.unprefix(inflight.messages[0].topic), result.late)
        log.info(
            "ingest_batch",
            events=len(inflight.messages),
            patients=len(result.touched),
            dead_letters=len(result.dead_letters),
            features=len(result.features),
            skipped=result.skipped,
            late=result.late,
            ms=round((time.perf_counter() - inflight.started) * 1000, 1),
        )
        return True

    async def _recover(self, exc: KafkaException | CallStuck) -> None:
        """A batch's transaction failed: roll it back, forget the window state in memory and
        read again from the committed offsets (the local stores hold committed state only)."""
        await self.checkpointer.roll_back(exc)
        await self._restored()
        self.states.clear()
        # the consumer's own assignment: a rebalance may have been reported but not applied yet
        assigned = self.consumer.assignment()
        await self._restore({(tp.topic, tp.partition) for tp in assigned}, wait=True)
        self._seek_from(await self._group_offsets(assigned) if assigned else [])

    async def _group_offsets(self, assigned: list[TopicPartition]) -> list[TopicPartition]:
        """The group's committed offsets of ``assigned``, waiting for a broker that is coming
        back (the failed transaction is often a broker restart, and a crash would only restart
        the replica into the same wait)."""
        delay = 1.0
        while True:
            try:
                committed: list[TopicPartition] = await self._blocking(self.consumer.committed, assigned, 60)
                return committed
            except KafkaException as exc:
                error = exc.args[0]
                if not worth_retrying(error):
                    raise
                log.warning("committed_offsets_retry", error=error.name(), retry_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 15.0)

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
            key = (tp.topic, tp.partition)
            tp.offset = max(tp.offset, last[key] + 1)
            until = self._replay_until.get(key)
            if until is not None:  # never behind what was committed before a replay
                if tp.offset >= until:
                    del self._replay_until[key]
                tp.offset = max(tp.offset, until)
            self._committed[key] = tp.offset
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
