"""Latency of symptom reports and item-9 alerts behind a wearable backlog; twin updates/s.

One run on the local broker and FerretDB, isolated by a topic prefix and a database of its own.

Workload
    *Backlog*, published before the worker starts: the simulator's ``--days`` biometric backfill
    of ``--patients`` patients (minute-level wearable data, in arrival order), interleaved with
    one resting heart rate a day for ``--sparse-patients`` patients over ``--sparse-days`` days.
    Each sparse sample closes its patient's previous day, so the twin stage gets a daily-features
    input (and publishes a TwinUpdate) for nearly every one of them and stays busy throughout.
    *Probes*, produced by the bench at steady rates from the moment one ``novamind worker`` has
    joined until ``--drained-s`` seconds after the backlog drained: symptom reports
    (``--report-rate``/s) and PHQ-9 results with item 9 >= 1 (``--item9-rate``/s), for patients
    of their own (reports for a backfill patient would carry today's time and close all of that
    patient's backfilled days at once; see README, Known limits).

Correlation
    *Symptom report -> TwinUpdate.* A SymptomReport produces no TwinUpdate of its own: the twin
    buffers it, and it reaches the twin through its day's PatientDailyFeatures, published when
    the patient's next event passes the end of that day plus the 1 h grace (event time). Each
    measured report (day d, 20:00) is therefore followed at once by the same patient's
    after-midnight report (d+1, 01:30), which closes day d: the update that reflects the report
    is the patient's first TwinUpdate with ``as_of_date >= d``, and the latency is pipeline time,
    not event-time waiting. On ``twin-inputs`` the run checks that the report came before day
    d's revision-0 features (so they carry it); reports where it did not are ``not_reflected``.
    The split: ingest stage = until the report's own record is appended to ``twin-inputs``
    (inside the batch transaction, readable at its commit); twin stage = from there to the update.
    *Item 9 -> alert.* The first ITEM9_SAFETY TwinAlert whose ``trigger_event_id`` is the
    result's event id (the watch publishes at least once).
    *PHQ-9 -> TwinUpdate.* The patient's update whose ``event_time`` is the result's: the reports
    path with no day to close (a cross-check of the symptom figure).

Times
    A probe starts when its producer delivery report (acks=all) arrives (bench clock). It ends
    at the output record's broker LogAppendTime: the bench sets ``message.timestamp.type`` to
    LogAppendTime on its own ``twin-updates``, ``twin-alerts`` and ``twin-inputs`` topics, and
    broker and bench share the host clock. ``backlog`` probes were acknowledged while the worker
    group still had ``wearable-biometrics`` lag (sampled every 0.5 s); ``drained`` ones after
    (the twin stage may still be working off its own inputs then).

Twin updates per second
    ``per_busy_s``: TwinUpdates ÷ the twin stage's busy time, the sum of the worker's
    ``twin_batch`` durations (load twins, apply, publish and await acks, MongoDB upsert, offset
    commit), i.e. what one worker's twin stage sustains while it has inputs queued.
    ``wall_clock``: TwinUpdates ÷ first-to-last update, the stage sharing its loop with ingest.

Writes bench/results/latency.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import (
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from prometheus_client.parser import text_string_to_metric_families
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from connectors.records import biometric_sample, envelope, event_id
from connectors.simulator import simulate
from connectors.simulator.publish import publish
from novamind.platform.kafka import admin_config, consumer_config, producer_config
from novamind.platform.producer import EventProducer
from novamind.platform.settings import PROJECT_ROOT, Settings
from novamind.platform.topicadmin import ensure_topics
from novamind.platform.topicreader import read_all
from schemas.assessments import score_items
from schemas.codec import AvroCodec
from schemas.topics import SOURCE_TOPICS, TopicName
from workers.runtime.clients import GROUP, SAFETY_GROUP

RESULTS = Path(__file__).parent / "results"
SOURCE = "bench-latency"
LOG_APPEND_TOPICS = (TopicName.TWIN_UPDATES, TopicName.TWIN_ALERTS, TopicName.TWIN_INPUTS)
WORKER_TOPICS = (*SOURCE_TOPICS, TopicName.TWIN_INPUTS)
PROBE_START = dt.date(2026, 1, 1)  # event days of the probe patients (their own timeline)
BACKLOG = "backlog"
DRAINED = "drained"
TIMEOUT_S = 30.0
METHOD = {
    "timestamps": "start: producer delivery report (acks=all), bench clock; end: broker LogAppendTime "
    "(set on the run's twin-updates, twin-alerts and twin-inputs topics)",
    "phases": "backlog: acknowledged while the worker group had wearable-biometrics lag; drained: after",
    "symptom_report": "the patient's first TwinUpdate with as_of_date >= the report's day; each measured "
    "report (20:00) is followed at once by the patient's 01:30 report, which closes the day (a "
    "SymptomReport alone yields no TwinUpdate); ingest stage: to the report's own twin-inputs record; "
    "twin stage: from there to the update",
    "item9": "first ITEM9_SAFETY TwinAlert whose trigger_event_id is the PHQ-9 result's event_id",
    "phq9_update": "the patient's TwinUpdate whose event_time is the PHQ-9 result's",
    "twin_updates_per_s": "per_busy_s: TwinUpdates / sum of the worker's twin_batch durations; wall_clock: "
    "TwinUpdates / first-to-last update; twin_apply_s, twin_store_s: the worker's step seconds (/metrics)",
}


class BenchError(RuntimeError):
    """The run could not measure what it set out to (worker died, nothing matched, timeout)."""


# ---------------------------------------------------------------- workload (pure)
def pseudonym(kind: str, index: int) -> str:
    return "p_" + hashlib.sha256(f"{SOURCE}:{kind}:{index}".encode()).hexdigest()[:32]


def sparse_backlog(patients: int, days: int, start: dt.date) -> list[dict[str, Any]]:
    """One resting heart rate per patient-day at 08:00 UTC, day by day (each closes the last)."""
    out = []
    for day in range(days):
        at = dt.datetime.combine(start + dt.timedelta(days=day), dt.time(8), tzinfo=dt.UTC)
        for i in range(patients):
            record = biometric_sample(
                patient_id=pseudonym("sparse", i),
                source=SOURCE,
                device_id=f"sparse-{i}",
                metric="RESTING_HEART_RATE",
                value=55.0 + (i * 7 + day * 3) % 20,
                event_time=at,
                received_time=at + dt.timedelta(minutes=1),
            )
            out.append({"record_type": "BiometricSample", "record": record})
    return out


def interleave(first: Sequence[Any], second: Sequence[Any]) -> list[Any]:
    """Both sequences, each in its own order, ``second`` spread evenly through ``first``."""
    if not second:
        return list(first)
    step = (len(first) + len(second)) / len(second)
    out: list[Any] = []
    a = b = 0
    while a < len(first) or b < len(second):
        if b < len(second) and (a >= len(first) or (b + 1) * step <= a + b + 1):
            out.append(second[b])
            b += 1
        else:
            out.append(first[a])
            a += 1
    return out


def symptom_report(patient_id: str, at: dt.datetime, severity: int, tag: str) -> dict[str, Any]:
    record = envelope(
        eid=event_id(SOURCE, patient_id, tag, at),
        patient_id=patient_id,
        event_time=at,
        received_time=at + dt.timedelta(seconds=30),
        source=SOURCE,
    )
    record.update(symptom_type="DEPRESSED_MOOD", severity=severity, context=None, triggers=[], notes=None)
    return record


def report_pair(patient_id: str, day: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The measured evening report of probe day ``day`` and the after-midnight one closing it."""
    evening = dt.datetime.combine(PROBE_START + dt.timedelta(days=day), dt.time(20), tzinfo=dt.UTC)
    measured = symptom_report(patient_id, evening, 3 + day % 5, "evening")
    closer = symptom_report(patient_id, evening + dt.timedelta(hours=5, minutes=30), 2, "after-midnight")
    return measured, closer


def item9_result(patient_id: str, day: int) -> dict[str, Any]:
    """A PHQ-9 result with item 9 answered 1 (or 2), on probe day ``day`` at 10:00."""
    at = dt.datetime.combine(PROBE_START + dt.timedelta(days=day), dt.time(10), tzinfo=dt.UTC)
    items = [1, 2, 1, 1, 2, 1, 1, 0, 1 + day % 2]
    scored = score_items("PHQ9", items)
    eid = event_id(SOURCE, patient_id, "phq9", at)
    record = envelope(
        eid=eid,
        patient_id=patient_id,
        event_time=at,
        received_time=at + dt.timedelta(seconds=5),
        source=SOURCE,
    )
    record.update(
        submission_id=eid,
        instrument="PHQ9",
        item_responses=items,
        total=scored.total,
        band=str(scored.band),
        item9_positive=scored.item9_positive,
        loinc_total=scored.loinc_total,
    )
    return record


# ---------------------------------------------------------------- matching (pure)
@dataclass(frozen=True)
class Probe:
    """A record the bench produced and timed: what to look for downstream."""

    kind: str  # "symptom" or "item9"
    event_id: str
    patient_id: str
    event_ms: int
    day: dt.date
    acked_ms: float
    phase: str


@dataclass(frozen=True)
class Output:
    """A decoded record of an output topic with its position and LogAppendTime."""

    partition: int
    offset: int
    ts_ms: int
    name: str
    record: dict[str, Any]


def epoch_ms(value: dt.datetime) -> int:
    return round(value.timestamp() * 1000)


def first_update_covering(probe: Probe, updates: Sequence[Output]) -> Output | None:
    """The patient's first TwinUpdate (in log order) whose day is the report's or later."""
    return next((u for u in updates if u.record["as_of_date"] >= probe.day), None)


def update_of_event(probe: Probe, updates: Sequence[Output]) -> Output | None:
    """The patient's first TwinUpdate computed from the probe record itself (same event time)."""
    return next((u for u in updates if epoch_ms(u.record["event_time"]) == probe.event_ms), None)


def reflected(probe: Probe, inputs: Sequence[Output]) -> bool:
    """Whether the report's twin input precedes its day's revision-0 features (which carry it)."""
    report = next((i.offset for i in inputs if i.record["event_id"] == probe.event_id), None)
    features = next(
        (
            i.offset
            for i in inputs
            if i.name == "PatientDailyFeatures"
            and i.record["date"] == probe.day
            and i.record["revision"] == 0
        ),
        None,
    )
    return report is not None and features is not None and report < features


def percentiles(values: Iterable[float]) -> dict[str, float | int]:
    """p50/p95/p99 (nearest rank), max and n, in the unit given; empty when there are none."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def rank(p: float) -> float:
        return ordered[max(math.ceil(p * len(ordered)) - 1, 0)]

    return {
        "p50": round(rank(0.50), 1),
        "p95": round(rank(0.95), 1),
        "p99": round(rank(0.99), 1),
        "max": round(ordered[-1], 1),
        "n": len(ordered),
    }


def by_phase(probes: Sequence[Probe], latency: dict[str, float]) -> dict[str, dict[str, float | int]]:
    return {
        phase: percentiles(latency[p.event_id] for p in probes if p.phase == phase and p.event_id in latency)
        for phase in (BACKLOG, DRAINED)
    }


@dataclass
class StageLog:
    """Sums of the worker's per-batch log lines (``twin_batch``, ``ingest_batch``, ``safety_alerts``)."""

    batches: dict[str, int] = field(default_factory=dict)
    ms: dict[str, float] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    updates: int = 0
    twins_saved: int = 0
    safety_ms: list[float] = field(default_factory=list)


def stage_log(lines: Iterable[str]) -> StageLog:
    out = StageLog()
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # not a structured log line (e.g. a library printing to stderr)
        name = entry.get("event") if isinstance(entry, dict) else None
        if name in ("twin_batch", "ingest_batch"):
            out.batches[name] = out.batches.get(name, 0) + 1
            out.ms[name] = out.ms.get(name, 0.0) + float(entry["ms"])
            out.events[name] = out.events.get(name, 0) + int(entry["events"])
            out.updates += int(entry.get("updates", 0))
            out.twins_saved += int(entry.get("twins", 0))
        elif name == "safety_alerts":
            out.safety_ms.append(float(entry["ms"]))
    return out


# ---------------------------------------------------------------- services (I/O)
def isolated_settings(run: str) -> Settings:
    base = Settings()
    return base.model_copy(
        update={
            "kafka": base.kafka.model_copy(update={"topic_prefix": f"{run}."}),
            "mongo": base.mongo.model_copy(update={"database": f"novamind_{run}"}),
        }
    )


def use_log_append_time(admin: AdminClient, topics: Iterable[str]) -> None:
    entry = ConfigEntry(
        "message.timestamp.type", "LogAppendTime", incremental_operation=AlterConfigOpType.SET
    )
    resources = [ConfigResource(ResourceType.TOPIC, t, incremental_configs=[entry]) for t in topics]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(timeout=TIMEOUT_S)


def wait_assigned(admin: AdminClient, groups: Sequence[str], worker: subprocess.Popen[bytes]) -> None:
    """Until every group has a member with partitions assigned (the worker is consuming)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise BenchError(f"worker exited with {worker.returncode} before joining its groups")
        futures = admin.describe_consumer_groups(list(groups), request_timeout=TIMEOUT_S)
        described = [futures[g].result(timeout=TIMEOUT_S) for g in groups]
        if all(any(m.assignment.topic_partitions for m in d.members) for d in described):
            return
        time.sleep(0.2)
    raise BenchError(f"groups {list(groups)} had no assigned member within 120 s")


class LagProbe:
    """Lag of a consumer group per topic: end offsets against committed offsets (one client)."""

    def __init__(self, settings: Settings, group: str, topics: Sequence[str], partitions: int) -> None:
        self.consumer = Consumer(consumer_config(settings.kafka, group_id=group, client_id="bench-lag"))
        self.partitions = [TopicPartition(t, p) for t in topics for p in range(partitions)]

    def lag(self) -> dict[str, int]:
        committed = self.consumer.committed(self.partitions, timeout=TIMEOUT_S)
        out: dict[str, int] = {}
        for tp in committed:
            _, end = self.consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=TIMEOUT_S
            )
            out[tp.topic] = out.get(tp.topic, 0) + max(end - max(tp.offset, 0), 0)
        return out

    def close(self) -> None:
        self.consumer.close()


class Prober:
    """Produces the probes at steady rates on a thread; records each one's acknowledgement."""

    def __init__(self, settings: Settings, codec: AvroCodec, args: argparse.Namespace) -> None:
        self.producer = Producer({**producer_config(settings.kafka, client_id="bench-probe"), "linger.ms": 0})
        self.codec = codec
        self.topic = settings.kafka.topic(TopicName.PATIENT_REPORTS)
        self.args = args
        self.probes: list[Probe] = []
        self.failed: list[str] = []
        self.drained_ms: float | None = None  # set by the main thread when the backlog is gone
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="probes", daemon=True)

    def _send(self, kind: str, name: str, record: dict[str, Any], *, timed: bool) -> None:
        def acked(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self.failed.append(err.name())
            elif timed:
                now = time.time() * 1000
                drained = self.drained_ms
                phase = BACKLOG if drained is None or now < drained else DRAINED
                self.probes.append(
                    Probe(
                        kind,
                        record["event_id"],
                        record["patient_id"],
                        epoch_ms(record["event_time"]),
                        record["event_time"].date(),
                        now,
                        phase,
                    )
                )

        value = self.codec.encode_dict(name, record, topic=self.topic)
        self.producer.produce(self.topic, key=record["patient_id"].encode(), value=value, on_delivery=acked)

    @contextmanager
    def running(self) -> Iterator[None]:
        self.thread.start()
        try:
            yield
        finally:
            self.stop.set()
            self.thread.join(TIMEOUT_S)

    def _run(self) -> None:
        try:
            self._produce()
        except KafkaException as exc:  # surfaced by the main loop, which stops the run
            self.failed.append(str(exc))

    def _produce(self) -> None:
        args = self.args
        started = time.monotonic()
        sent = {"symptom": 0, "item9": 0}
        period = {"symptom": 1 / args.report_rate, "item9": 1 / args.item9_rate}
        while not self.stop.is_set():
            kind = min(sent, key=lambda k: (sent[k] + 1) * period[k])
            delay = started + (sent[kind] + 1) * period[kind] - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                break
            n = sent[kind]
            if kind == "symptom":
                measured, closer = report_pair(pseudonym("reporter", n % args.reporters), n // args.reporters)
                self._send(kind, "SymptomReport", measured, timed=True)
                self._send(kind, "SymptomReport", closer, timed=False)
            else:
                record = item9_result(pseudonym("item9", n % args.item9_patients), n // args.item9_patients)
                self._send(kind, "AssessmentResult", record, timed=True)
            self.producer.flush(TIMEOUT_S)
            sent[kind] += 1


@contextmanager
def worker_process(settings: Settings, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A ``novamind worker`` (JSON log lines to ``log``) and its web port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "NOVAMIND_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "NOVAMIND_MONGO__DATABASE": settings.mongo.database,
        "NOVAMIND_LOG_FORMAT": "json",
        "NOVAMIND_LOG_LEVEL": "INFO",
    }
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "novamind.app.cli", "worker", "--web-port", str(port)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
        try:
            yield worker, port
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=30)


def step_seconds(port: int) -> dict[str, float]:
    """Seconds spent per step so far (``novamind_step_seconds_sum``) from the worker's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT_S) as response:
        text = response.read().decode()
    return {
        sample.labels["step"]: round(sample.value, 2)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "novamind_step_seconds_sum"
    }


def rss_mb(pid: int) -> float:
    return round(int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024, 1)


def read_outputs(
    settings: Settings, name: str, codec: AvroCodec, keys: set[bytes]
) -> tuple[list[int], list[Output]]:
    """Every LogAppendTime of a topic, and the decoded records keyed by one of ``keys``."""
    stamps: list[int] = []
    decoded: list[Output] = []
    for m in read_all(settings.kafka, settings.kafka.topic(name)):
        kind, ts = m.timestamp()
        if kind != TIMESTAMP_LOG_APPEND_TIME:
            raise BenchError(f"{name} record without LogAppendTime (timestamp type {kind})")
        stamps.append(ts)
        if m.key() in keys:
            record_name, record = codec.decode_dict(m.value())
            decoded.append(Output(m.partition(), m.offset(), ts, record_name, record))
    return stamps, decoded


def by_patient(outputs: Iterable[Output]) -> dict[str, list[Output]]:
    out: dict[str, list[Output]] = {}
    for o in sorted(outputs, key=lambda o: (o.partition, o.offset)):
        out.setdefault(o.record["patient_id"], []).append(o)
    return out


def drop_run(settings: Settings, admin: AdminClient) -> None:
    """Delete the run's topics and database (the broker and FerretDB are shared)."""
    prefix = settings.kafka.topic_prefix
    try:
        topics = [t for t in admin.list_topics(timeout=TIMEOUT_S).topics if t.startswith(prefix)]
        if topics:
            for future in admin.delete_topics(topics, operation_timeout=TIMEOUT_S).values():
                future.result(timeout=TIMEOUT_S)
        client: MongoClient[dict[str, Any]] = MongoClient(
            settings.mongo.uri.get_secret_value(), serverSelectionTimeoutMS=10_000
        )
        with client:
            client.drop_database(settings.mongo.database)
    except (KafkaException, PyMongoError) as exc:
        print(f"bench_latency: could not delete topics {prefix}* or the database: {exc}", file=sys.stderr)


# ---------------------------------------------------------------- the run
def measure(args: argparse.Namespace, settings: Settings, admin: AdminClient) -> dict[str, Any]:
    codec = AvroCodec.from_settings(settings.kafka)
    ensure_topics(settings.kafka)
    use_log_append_time(admin, [settings.kafka.topic(t) for t in LOG_APPEND_TOPICS])
    cohort = simulate(args.patients, args.days, 5, dt.date(2026, 2, 2))
    dense = [d for d in cohort.deliveries if d["record_type"] == "BiometricSample"]
    sparse = sparse_backlog(args.sparse_patients, args.sparse_days, dt.date(2026, 2, 2))
    backlog = interleave(dense, sparse)
    produced = publish(
        backlog,
        producer=EventProducer(kafka=settings.kafka, client_id="bench-backlog"),
        codec=codec,
        topic_name=settings.kafka.topic,
    )
    main_group = settings.kafka.topic(GROUP)
    safety_group = settings.kafka.topic(SAFETY_GROUP)
    lags = LagProbe(
        settings, main_group, [settings.kafka.topic(t) for t in WORKER_TOPICS], settings.kafka.partitions
    )
    safety_lag = LagProbe(
        settings, safety_group, [settings.kafka.topic(TopicName.PATIENT_REPORTS)], settings.kafka.partitions
    )
    prober = Prober(settings, codec, args)
    wearable = settings.kafka.topic(TopicName.WEARABLE_BIOMETRICS)
    twin_inputs = settings.kafka.topic(TopicName.TWIN_INPUTS)
    twin_lag: list[int] = []
    log = Path(tempfile.mkdtemp(prefix="bench-latency-")) / "worker.log"  # kept when the run fails
    with worker_process(settings, log) as (worker, port):
        wait_assigned(admin, [main_group, safety_group], worker)
        joined = time.time()
        deadline = time.monotonic() + args.timeout_s
        with prober.running():
            while prober.drained_ms is None or time.time() * 1000 - prober.drained_ms < args.drained_s * 1000:
                if prober.failed:
                    raise BenchError(f"a probe was not acknowledged: {prober.failed[0]}")
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"worker exited or the backlog did not drain in time (log: {log})")
                lag = lags.lag()
                twin_lag.append(lag.get(twin_inputs, 0))
                if len(twin_lag) % 20 == 0:
                    print(
                        f"lag: wearable {lag.get(wearable, 0)}, twin-inputs {lag.get(twin_inputs, 0)}",
                        flush=True,
                    )
                if prober.drained_ms is None and lag.get(wearable, 0) == 0:
                    prober.drained_ms = time.time() * 1000
                time.sleep(0.5)
        while any(lags.lag().values()) or any(safety_lag.lag().values()):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the worker did not catch up with the probes in time (log: {log})")
            time.sleep(0.5)
        worker_rss = rss_mb(worker.pid)
        steps = step_seconds(port)
    stages = stage_log(log.read_text(errors="replace").splitlines())
    shutil.rmtree(log.parent)
    lags.close()
    safety_lag.close()
    if prober.failed:
        raise BenchError(f"{len(prober.failed)} probes not acknowledged: {prober.failed[0]}")
    assert prober.drained_ms is not None
    return analyse(
        args,
        settings,
        codec,
        prober.probes,
        stages,
        context={
            "backlog_biometric_events": len(backlog),
            "dense_events": len(dense),
            "sparse_events": len(sparse),
            "producer": produced,
            "drain_s": round(prober.drained_ms / 1000 - joined, 1),
            "twin_inputs_lag_max": max(twin_lag, default=0),
            "twin_inputs_lag_samples_nonzero": round(
                sum(1 for n in twin_lag if n) / max(len(twin_lag), 1), 2
            ),
            "worker_rss_mb": worker_rss,
            "worker_step_seconds": steps,
        },
    )


def analyse(
    args: argparse.Namespace,
    settings: Settings,
    codec: AvroCodec,
    probes: list[Probe],
    stages: StageLog,
    context: dict[str, Any],
) -> dict[str, Any]:
    keys = {p.patient_id.encode() for p in probes}
    update_stamps, updates = read_outputs(settings, TopicName.TWIN_UPDATES, codec, keys)
    _, alerts = read_outputs(settings, TopicName.TWIN_ALERTS, codec, keys)
    _, inputs = read_outputs(settings, TopicName.TWIN_INPUTS, codec, keys)
    updates_of, inputs_of = by_patient(updates), by_patient(inputs)
    reports = [p for p in probes if p.kind == "symptom"]
    item9 = [p for p in probes if p.kind == "item9"]

    report_ms: dict[str, float] = {}
    ingest_ms: dict[str, float] = {}
    twin_ms: dict[str, float] = {}
    not_reflected = 0
    for p in reports:
        update = first_update_covering(p, updates_of.get(p.patient_id, []))
        forwarded = next(
            (i for i in inputs_of.get(p.patient_id, []) if i.record["event_id"] == p.event_id), None
        )
        not_reflected += not reflected(p, inputs_of.get(p.patient_id, []))
        if update is not None:
            report_ms[p.event_id] = update.ts_ms - p.acked_ms
        if forwarded is not None:
            ingest_ms[p.event_id] = forwarded.ts_ms - p.acked_ms
            if update is not None:
                twin_ms[p.event_id] = update.ts_ms - forwarded.ts_ms

    alert_ms: dict[str, float] = {}
    phq9_update_ms: dict[str, float] = {}
    for p in item9:
        stamps = [
            a.ts_ms
            for a in alerts
            if a.record["alert_type"] == "ITEM9_SAFETY" and a.record["trigger_event_id"] == p.event_id
        ]
        if stamps:
            alert_ms[p.event_id] = min(stamps) - p.acked_ms
        update = update_of_event(p, updates_of.get(p.patient_id, []))
        if update is not None:
            phq9_update_ms[p.event_id] = update.ts_ms - p.acked_ms
    if not report_ms or not alert_ms:
        raise BenchError(f"matched {len(report_ms)} report updates and {len(alert_ms)} item-9 alerts")

    busy_s = stages.ms.get("twin_batch", 0.0) / 1000
    span_s = (max(update_stamps) - min(update_stamps)) / 1000 if len(update_stamps) > 1 else 0.0
    twin_batches = stages.batches.get("twin_batch", 0)
    return {
        "bench": "latency",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "parameters": {k: v for k, v in vars(args).items() if k != "keep"},
        "method": METHOD,
        "symptom_report_to_twin_update_ms": {
            **by_phase(reports, report_ms),
            "ingest_stage_backlog": by_phase(reports, ingest_ms)[BACKLOG],
            "twin_stage_backlog": by_phase(reports, twin_ms)[BACKLOG],
            "unmatched": len(reports) - len(report_ms),
            "not_reflected": not_reflected,
        },
        "item9_alert_ms": {
            **by_phase(item9, alert_ms),
            "over_1s": sum(1 for v in alert_ms.values() if v > 1000),
            "unmatched": len(item9) - len(alert_ms),
            "watch_batch_ms": percentiles(stages.safety_ms),
        },
        "phq9_to_twin_update_ms": {
            **by_phase(item9, phq9_update_ms),
            "unmatched": len(item9) - len(phq9_update_ms),
        },
        "twin_updates_per_s": {
            "per_busy_s": round(stages.updates / busy_s) if busy_s else None,
            "wall_clock": round(len(update_stamps) / span_s) if span_s else None,
            "updates": len(update_stamps),
            "twin_batches": twin_batches,
            "inputs_per_batch": round(stages.events.get("twin_batch", 0) / twin_batches)
            if twin_batches
            else 0,
            "twins_per_batch": round(stages.twins_saved / twin_batches) if twin_batches else 0,
            "busy_s": round(busy_s, 1),
            "twin_apply_s": context["worker_step_seconds"].get("twin_apply"),
            "twin_store_s": context["worker_step_seconds"].get("twin_store"),
            "store_ms_per_twin_saved": round(
                1000 * context["worker_step_seconds"].get("twin_store", 0.0) / stages.twins_saved, 1
            )
            if stages.twins_saved
            else None,
            "ingest_busy_s": round(stages.ms.get("ingest_batch", 0.0) / 1000, 1),
            "span_s": round(span_s, 1),
        },
        **context,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--patients", type=int, default=20, help="patients in the wearable backfill")
    parser.add_argument("--days", type=int, default=30, help="days of the wearable backfill")
    parser.add_argument("--sparse-patients", type=int, default=100, help="patients with one sample a day")
    parser.add_argument("--sparse-days", type=int, default=60)
    parser.add_argument("--report-rate", type=float, default=5.0, help="measured symptom reports per second")
    parser.add_argument("--item9-rate", type=float, default=2.0, help="item-9 PHQ-9 results per second")
    parser.add_argument("--reporters", type=int, default=10, help="patients sending the symptom reports")
    parser.add_argument("--item9-patients", type=int, default=10)
    parser.add_argument("--drained-s", type=float, default=8.0, help="probing after the backlog drained")
    parser.add_argument("--timeout-s", type=float, default=300.0)
    parser.add_argument("--keep", action="store_true", help="keep the run's topics and database")
    args = parser.parse_args()
    settings = isolated_settings(f"lat-{time.strftime('%H%M%S')}")
    admin = AdminClient(admin_config(settings.kafka))
    try:
        result = measure(args, settings, admin)
    except (BenchError, KafkaException) as exc:
        print(f"bench_latency: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.keep:
            drop_run(settings, admin)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latency.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
