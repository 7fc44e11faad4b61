"""Worker state cost in both regimes, in one run: a backfill, and live traffic over many patients.

Phases (each on its own topics, the real broker, one ``novamind worker`` process):

1. **Backfill**: ``--backfill-patients`` patients x 30 days of minute-level heart rate published
   at once; the bare consume-and-decode ceiling and the consume-decode-fold ceiling (the
   worker's fold into in-memory state, without store, changelog or transactions) are measured
   on the same topic, then the worker drains it (its rate over the first 90%, as in the
   sustained phase). Worker CPU (user + system, from /proc) and changelog bytes per event.
2. **History**: ``--patients`` patients each get the window state of 30 days of minute-level
   heart rate. Folding 43,200 events per patient through the worker for thousands of patients
   would take hours here, so one patient's history is folded with the worker's own pure
   functions and its parts are written to every patient's changelog partition, exactly what
   the worker itself would have written; the worker starts on an empty store and restores
   them (the full-restore time is reported).
3. **Live trickle**: heart-rate samples for day 31 arrive at ``--rate`` events/s, round robin
   over all patients (each patient one sample every patients/rate seconds). First one event
   per patient (it loads the patient and writes the day that turned cold, once a day per
   patient: reported apart, with the memory the loaded patients take), then the trickle in
   two windows of ``--seconds`` (at most 29 samples per patient each, so both end before
   01:00): right after the day turn, while the store flushes and compacts the cold-day
   records, and then steady; then one event per patient past 01:00, which closes the day
   before (features from the week's windows, published, learnt by the twin stage). For each:
   worker CPU until drained and compacted (also above the idle cost, and by thread:
   interpreter, RocksDB, librdkafka), changelog bytes per event, RSS. Idle is measured
   twice, after the restore (once its compaction is done, reported apart) and after the
   trickle; the lower one is subtracted. A patient-day's CPU per event weighs the four by a
   day of minute-level samples. Beside the steady trickle a bare consumer
   (``bench.bare_live``: the worker's fetch settings and loop, decode only) reads the same
   records: what reading a trickle costs any consumer, against the backfill's bare ceiling
   timed in CPU, so that the worker's own work per event can be compared between the two
   regimes.
4. **Sustained**: ``--burst`` events spread over all patients published as fast as the
   producer can; the worker's drain rate over the first 90% is the live rate it sustains
   (the last batch lingers for more wearable samples, as a trickle's do).
5. **Restart**: the worker is stopped and started again with the same replica id and store:
   time from start to ready (partitions assigned, tail restored). Then a trickle of
   ``--seconds``, a SIGKILL while its patients' samples are held back (not yet written, see
   ``NOVAMIND_WORKER__STATE_WRITE_DELAY_S``), and a replacement: its time to ready, and the
   time and CPU until it has read those samples again from the source and settled.

Writes bench/results/live.json (or live_<patients>.json with ``--tag``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from bench.bench_worker import bare_ceiling, fold_ceiling
from novamind.platform.kafka import consumer_config, producer_config
from novamind.platform.lag import end_offsets, group_lag
from novamind.platform.producer import EventProducer
from novamind.platform.settings import PROJECT_ROOT, Settings
from novamind.platform.topicadmin import ensure_topics
from schemas.codec import AvroCodec
from schemas.topics import TopicName
from workers.features.parts import all_parts
from workers.features.patient import PatientState
from workers.runtime import clients

RESULTS = Path(__file__).parent / "results"
DAY_MS = 86_400_000
MINUTE_MS = 60_000
START = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
START_MS = int(START.timestamp() * 1000)
CHANGELOG = TopicName.PATIENT_WINDOWS
BIOMETRICS = TopicName.WEARABLE_BIOMETRICS
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
QUIET_CORE_SHARE = 0.02  # below this with no traffic, the store's compactions are done


def pseudonym(i: int) -> str:
    return f"p_{i:032x}"


def heart_rate(patient_id: str, t_ms: int, rng: random.Random) -> dict[str, Any]:
    when = dt.datetime.fromtimestamp(t_ms / 1000, dt.UTC)
    return {
        "event_id": f"{patient_id}-hr-{t_ms}",
        "patient_id": patient_id,
        "event_time": when,
        "received_time": when,
        "source": "bench",
        "schema_version": 1,
        "metric": "HEART_RATE",
        "value": float(rng.randint(52, 96)),
        "unit": "beats/min",
        "duration_seconds": None,
        "sleep_stage": None,
        "device_id": "bench-watch",
        "loinc": "8867-4",
    }


def history(patient_id: str, days: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    return [heart_rate(patient_id, START_MS + m * MINUTE_MS, rng) for m in range(days * 1440)]


# ---- Kafka's murmur2 partitioner (librdkafka murmur2_random, the Java client's default) ----
def murmur2(data: bytes) -> int:
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = length % 4
    tail = data[length - rest :]
    if rest == 3:
        h ^= tail[2] << 16
    if rest >= 2:
        h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_of(key: str, partitions: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


# ---- measuring ---------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def _stat_cpu_seconds(stat: str) -> float:
    """User + system CPU seconds from a ``/proc/<pid>[/task/<tid>]/stat`` line."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


def changelog_bytes(settings: Settings, since: dict[tuple[str, int], int]) -> tuple[int, int]:
    """Records and key+value bytes written to the changelog after ``since`` (read uncommitted)."""
    topic = settings.kafka.topic(CHANGELOG)
    ends = end_offsets(settings.kafka, [topic])
    consumer = Consumer(
        {
            **consumer_config(settings.kafka, group_id=f"bench-bytes-{time.time_ns()}", client_id="bench"),
            "isolation.level": "read_uncommitted",
        }
    )
    todo = {tp: end for tp, end in ends.items() if end > since.get(tp, 0)}
    consumer.assign([TopicPartition(t, p, since.get((t, p), 0)) for (t, p) in todo])
    records = size = 0
    done: set[tuple[str, int]] = set()
    while len(done) < len(todo):
        for message in consumer.consume(5000, timeout=1.0):
            if message.error() is not None:
                continue
            tp = (message.topic() or "", message.partition() or 0)
            records += 1
            size += len(message.key() or b"") + len(message.value() or b"")
            if (message.offset() or 0) + 1 >= todo[tp]:
                done.add(tp)
        for tp, end in todo.items():
            position = consumer.position([TopicPartition(*tp)])[0].offset
            if position >= end:
                done.add(tp)
    consumer.close()
    return records, size


class WorkerUnderTest:
    def __init__(self, settings: Settings, state_dir: Path, port: int) -> None:
        self.settings = settings
        self.port = port
        env = {
            **os.environ,
            "NOVAMIND_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
            "NOVAMIND_MONGO__DATABASE": settings.mongo.database,
            "NOVAMIND_WORKER__STATE_DIR": str(state_dir),
            "NOVAMIND_WORKER__STATE_CACHE_PATIENTS": str(settings.worker.state_cache_patients),
            "NOVAMIND_WORKER__STATE_WRITE_DELAY_S": str(settings.worker.state_write_delay_s),
            "NOVAMIND_WORKER__STATIC_MEMBERSHIP": str(settings.worker.static_membership).lower(),
            "NOVAMIND_LOG_LEVEL": "WARNING",
        }
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "novamind.app.cli", "worker", f"--web-port={port}", "--replica-id=bench"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout_s: float = 1800) -> float:
        """Seconds from process start until /readyz answers 200."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                url = f"http://127.0.0.1:{self.port}/readyz"
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError("the worker exited before it was ready")
            time.sleep(0.1)
        raise TimeoutError("the worker did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=120)


def wait_drained(settings: Settings, topic: str, timeout_s: float = 3600, left: int = 0) -> float:
    """When the worker's group has at most ``left`` records of ``topic`` still to commit."""
    group = clients.group_id(settings)
    deadline = time.monotonic() + timeout_s
    while sum(group_lag(settings.kafka, group, [topic]).values()) > left:
        if time.monotonic() > deadline:
            raise TimeoutError("the worker did not catch up")
        time.sleep(0.2)
    return time.perf_counter()


def scenario(
    base: Settings,
    name: str,
    cache_patients: int,
    write_delay_s: float | None = None,
    static_membership: bool = False,
) -> Settings:
    worker: dict[str, Any] = {"state_cache_patients": cache_patients, "static_membership": static_membership}
    if write_delay_s is not None:
        worker["state_write_delay_s"] = write_delay_s
    settings = base.model_copy(
        update={
            "kafka": base.kafka.model_copy(update={"topic_prefix": f"{name}."}),
            "mongo": base.mongo.model_copy(update={"database": f"novamind_{name}"}),
            "worker": base.worker.model_copy(update=worker),
        }
    )
    ensure_topics(settings.kafka)
    return settings


def publish(settings: Settings, records: list[dict[str, Any]], rate: float | None = None) -> float:
    """Publish biometric records (at ``rate`` per second if given); returns the seconds taken."""
    codec = AvroCodec()
    producer = EventProducer(kafka=settings.kafka, client_id="bench")
    topic = settings.kafka.topic(BIOMETRICS)
    started = time.perf_counter()
    for n, record in enumerate(records, start=1):
        value = codec.encode_dict("BiometricSample", record)
        producer.send(topic, key=record["patient_id"].encode(), value=value)
        if rate:
            ahead = n / rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush(120)
    return time.perf_counter() - started


def backfill_phase(base: Settings, run: str, patients: int, days: int, work: Path) -> dict[str, Any]:
    settings = scenario(base, f"{run}-backfill", 10_000)
    topic = settings.kafka.topic(BIOMETRICS)
    records = [r for i in range(patients) for r in history(pseudonym(i), days)]
    publish(settings, records)
    bare_cpu0 = cpu_seconds(os.getpid())
    ceiling = bare_ceiling(settings, topic, len(records))
    bare_cpu = cpu_seconds(os.getpid()) - bare_cpu0  # this process does nothing else meanwhile
    fold_rate = fold_ceiling(settings, topic, len(records))
    worker = WorkerUnderTest(settings, work / "backfill", 6191)
    worker.wait_ready()
    cpu0, t0 = cpu_seconds(worker.pid), time.perf_counter()
    try:
        tail = len(records) // 10  # rate over the first 90%: the last batch lingers (see burst)
        most = wait_drained(settings, topic, left=tail)
        finished = wait_drained(settings, topic)
        cpu = cpu_seconds(worker.pid) - cpu0
        rss = rss_mb(worker.pid)
    finally:
        worker.stop()
    records_written, size = changelog_bytes(settings, {})
    n = len(records)
    return {
        "patients": patients,
        "days": days,
        "events": n,
        "bare_consume_decode_per_s": round(ceiling),
        "bare_cpu_ms_per_event": round(bare_cpu * 1000 / n, 4),
        "worker_events_per_s": round((n - tail) / (most - t0)),
        "worker_events_per_s_to_the_last": round(n / (finished - t0)),
        "ratio_worker_to_bare": round((n - tail) / (most - t0) / ceiling, 3),
        "consume_decode_fold_per_s": round(fold_rate),
        "ratio_fold_to_bare": round(fold_rate / ceiling, 3),
        "ratio_worker_to_fold": round((n - tail) / (most - t0) / fold_rate, 3),
        "cpu_ms_per_event": round(cpu * 1000 / n, 4),
        "changelog_records": records_written,
        "changelog_bytes_per_event": round(size / n, 1),
        "rss_mb": round(rss, 1),
    }


def seed_history(settings: Settings, patients: int, days: int) -> dict[str, Any]:
    """Write each patient's 30-day window state (folded once, cloned per pseudonym) to the changelog."""
    template = PatientState(pseudonym(0))
    started = time.perf_counter()
    for record in history(pseudonym(0), days):
        assert template.ingest_biometric(record, START_MS + 400 * DAY_MS) is None
    template.flush_revisions()
    template.drain()
    fold_s = time.perf_counter() - started
    parts = all_parts(template, {})
    producer = Producer(producer_config(settings.kafka, client_id="bench-seed"))
    topic = settings.kafka.topic(CHANGELOG)
    size = 0
    for i in range(patients):
        patient_id = pseudonym(i)
        partition = partition_of(patient_id, settings.kafka.partitions)
        for part, value in parts.items():
            key = f"{patient_id}|{part}".encode()
            size += len(key) + len(value or b"")
            while True:
                try:
                    producer.produce(topic, key=key, value=value, partition=partition)
                    break
                except BufferError:
                    producer.poll(0.1)
        producer.poll(0)
    producer.flush(300)
    return {
        "parts_per_patient": len(parts),
        "changelog_bytes_per_patient": round(size / patients),
        "template_fold_s": round(fold_s, 2),
    }


class BareUnderTest:
    """``bench.bare_live`` reading ``topic``: the bare cost of consuming a trickle."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.bare_live", topic],
            env={**os.environ, "NOVAMIND_LOG_LEVEL": "WARNING"},
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("bench.bare_live did not start")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def idle_core_share(pid: int, seconds: float) -> float:
    """The share of a core the process uses over ``seconds`` with no traffic."""
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    return (cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)


def settle(pid: int, quiet: float = QUIET_CORE_SHARE, window_s: float = 3.0, timeout_s: float = 600) -> float:
    """Wait until the process uses less than ``quiet`` of a core over ``window_s`` with no
    traffic (the store's background compaction of what was just written is done); returns the
    seconds waited."""
    t0 = time.perf_counter()
    while idle_core_share(pid, window_s) >= quiet and time.perf_counter() - t0 < timeout_s:
        pass
    return time.perf_counter() - t0


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds of the process's threads so far, by kind: the interpreter's threads, RocksDB's
    background threads (flushes, compactions) and librdkafka's threads (``rocksdb:*``/``rdk:*``)."""
    out = dict.fromkeys(("python", "rocksdb", "librdkafka"), 0.0)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            seconds = _stat_cpu_seconds((task / "stat").read_text())
        except OSError:  # the thread ended
            continue
        kind = "python"
        if name.startswith(("rocksdb", "rdk:")):
            kind = "rocksdb" if name.startswith("rocksdb") else "librdkafka"
        out[kind] += seconds
    return out


def trickle(
    settings: Settings,
    worker: WorkerUnderTest,
    events: list[dict[str, Any]],
    rate: float,
    bare: BareUnderTest | None = None,
) -> dict[str, Any]:
    """Publish ``events`` at ``rate``; the worker's CPU until it has drained them and the twin
    inputs they caused, and its store's compactions are done (``cpu_s`` over ``elapsed_s``, by
    thread), changelog bytes, RSS; and ``bare``'s CPU over the same time (``bare_cpu_s``)."""
    topic = settings.kafka.topic(BIOMETRICS)
    since = end_offsets(settings.kafka, [settings.kafka.topic(CHANGELOG)])
    bare0 = 0.0 if bare is None else cpu_seconds(bare.pid)
    cpu0, t0 = cpu_seconds(worker.pid), time.perf_counter()
    threads0 = thread_cpu_seconds(worker.pid)
    publish_s = publish(settings, events, rate=rate)
    wait_drained(settings, topic)
    # a day's close publishes features the twin stage learns from (and stores in MongoDB)
    drained = wait_drained(settings, settings.kafka.topic(TopicName.TWIN_INPUTS)) - t0
    settle(worker.pid)
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(worker.pid) - cpu0
    threads = {k: v - threads0[k] for k, v in thread_cpu_seconds(worker.pid).items()}
    bare_cpu = {} if bare is None else {"bare_cpu_s": cpu_seconds(bare.pid) - bare0}
    records, size = changelog_bytes(settings, since)
    n = len(events)
    return {
        **bare_cpu,
        "rate_per_s": rate,
        "events": n,
        "published_s": round(publish_s, 1),
        "drained_s": round(drained, 1),
        "cpu_s": cpu,
        "elapsed_s": elapsed,
        "cpu_ms_per_event": round(cpu * 1000 / n, 4),
        "cpu_ms_per_event_by_thread": {k: round(v * 1000 / n, 4) for k, v in threads.items()},
        "changelog_records": records,
        "changelog_bytes_per_event": round(size / n, 1),
        "worker_core_share": round(cpu / elapsed, 3),
        "rss_mb": round(rss_mb(worker.pid), 1),
    }


def live_events(patients: int, count: int, first_minute: int, rng: random.Random) -> list[dict[str, Any]]:
    """``count`` samples round robin over the patients, each patient's a minute apart."""
    out = []
    for n in range(count):
        i = n % patients
        minute = first_minute + n // patients
        out.append(heart_rate(pseudonym(i), START_MS + minute * MINUTE_MS, rng))
    return out


def live_phase(base: Settings, run: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    settings = scenario(base, f"{run}-live", args.cache_patients, args.write_delay, args.static_membership)
    topic = settings.kafka.topic(BIOMETRICS)
    seeded = seed_history(settings, args.patients, args.days)
    state_dir = work / "live"
    worker = WorkerUnderTest(settings, state_dir, 6192)
    rng = random.Random(3)
    out: dict[str, Any] = {
        "patients": args.patients,
        "history_days": args.days,
        "state_write_delay_s": settings.worker.state_write_delay_s,
        "static_membership": settings.worker.static_membership,
        **seeded,
    }
    try:
        out["full_restore_ready_s"] = round(worker.wait_ready(), 2)
        out["rss_after_restore_mb"] = round(rss_mb(worker.pid), 1)
        # the store compacts what the restore wrote, in the background: once per restore
        cpu0 = cpu_seconds(worker.pid)
        out["restore_compaction"] = {"seconds": round(settle(worker.pid), 1)}
        out["restore_compaction"]["cpu_s"] = round(cpu_seconds(worker.pid) - cpu0, 2)
        # idle: what polling, heartbeats and empty transactions cost with no traffic
        idle_share = idle_core_share(worker.pid, args.idle_seconds)
        out["idle_core_share"] = round(idle_share, 4)
        # warm-up: each patient's first event of the new day loads the patient from the store
        # and writes the day that turned cold as one record: once a day per patient, so it is
        # measured apart from the steady trickle, with the compaction those writes cause
        first = args.days * 1440
        warm = live_events(args.patients, args.patients, first, rng)
        since = end_offsets(settings.kafka, [settings.kafka.topic(CHANGELOG)])
        cpu0 = cpu_seconds(worker.pid)
        publish(settings, warm, rate=args.rate)
        wait_drained(settings, topic)
        _, size = changelog_bytes(settings, since)
        rss_loaded = rss_mb(worker.pid)
        settled_s = settle(worker.pid)
        out["first_event_of_day"] = {
            "cpu_ms_per_event": round((cpu_seconds(worker.pid) - cpu0) * 1000 / len(warm), 4),
            "changelog_bytes_per_event": round(size / len(warm), 1),
            "compaction_settled_s": round(settled_s, 1),
        }
        loaded_mb = rss_loaded - out["rss_after_restore_mb"]
        out["resident_kb_per_patient"] = round(loaded_mb * 1024 / args.patients, 1)
        # live trickle: right after the day turn (the store flushes and compacts the day's
        # cold records while it runs), then the same again, steady; both before 01:00, when
        # the day before closes (measured next)
        midnight = first  # the new day's first minute
        per_patient = min(int(args.rate * args.seconds) // args.patients, 29)
        count = per_patient * args.patients
        after_turn_events = live_events(args.patients, count, midnight + 1, rng)
        after_turn = trickle(settings, worker, after_turn_events, args.rate)
        steady_events = live_events(args.patients, count, midnight + 1 + per_patient, rng)
        # beside the worker, a bare consumer reads the same steady trickle and only decodes it
        bare = BareUnderTest(settings, topic)
        try:
            bare_idle = idle_core_share(bare.pid, args.idle_seconds)
            steady = trickle(settings, worker, steady_events, args.rate, bare)
        finally:
            bare.stop()
        # the day before closes once a patient's clock passes 01:00 (its grace hour): its
        # features are computed from the week's windows (loaded from the store) and published,
        # and the twin stage learns from them: once a day per patient
        closers = live_events(args.patients, args.patients, midnight + 61, rng)
        closing = trickle(settings, worker, closers, args.rate)
        settled = idle_core_share(worker.pid, args.idle_seconds)
        idle_share = min(idle_share, settled)  # the lower idle: the busy share is not understated
        bare_busy = steady.pop("bare_cpu_s") - bare_idle * steady["elapsed_s"]
        steady["bare_consume_decode_ms_per_event_above_idle"] = round(bare_busy * 1000 / steady["events"], 4)
        for window in (after_turn, steady, closing):
            busy = window.pop("cpu_s") - idle_share * window.pop("elapsed_s")
            window["cpu_ms_per_event_above_idle"] = round(busy * 1000 / window["events"], 4)
            window["idle_core_share_after"] = round(settled, 4)
        out["trickle"], out["trickle_steady"], out["day_close"] = after_turn, steady, closing
        # a patient-day of minute-level samples: its first event, the trickle after the day
        # turn, the event that closes the day before, then steady events for the rest of the day
        rest = 1440 - 2 - per_patient
        out["patient_day_cpu_ms_per_event"] = round(
            (
                out["first_event_of_day"]["cpu_ms_per_event"]
                + after_turn["cpu_ms_per_event_above_idle"] * per_patient
                + closing["cpu_ms_per_event_above_idle"]
                + steady["cpu_ms_per_event_above_idle"] * rest
            )
            / 1440,
            4,
        )
        first = midnight + 62
        out["rss_after_trickle_mb"] = round(rss_mb(worker.pid), 1)
        # sustained: a burst spread over every patient, drained as fast as the worker can
        burst = live_events(args.patients, args.burst, first, rng)
        since = end_offsets(settings.kafka, [settings.kafka.topic(CHANGELOG)])
        cpu0, t0 = cpu_seconds(worker.pid), time.perf_counter()
        publish(settings, burst)
        # the rate over the first 90%: the last batch is not full, so it lingers for more
        # wearable samples (a stream that goes on has no such tail)
        tail = len(burst) // 10
        most = wait_drained(settings, topic, left=tail)
        finished = wait_drained(settings, topic)
        cpu = cpu_seconds(worker.pid) - cpu0
        _, size = changelog_bytes(settings, since)
        out["burst"] = {
            "events": len(burst),
            "events_per_s": round((len(burst) - tail) / (most - t0)),
            "events_per_s_to_the_last": round(len(burst) / (finished - t0)),
            "cpu_ms_per_event": round(cpu * 1000 / len(burst), 4),
            "changelog_bytes_per_event": round(size / len(burst), 1),
        }
        out["rss_mb"] = round(rss_mb(worker.pid), 1)
    finally:
        worker.stop()
    disk = sum(f.stat().st_size for f in state_dir.rglob("*") if f.is_file())
    out["store_bytes_per_patient"] = round(disk / args.patients)
    restarted = WorkerUnderTest(settings, state_dir, 6193)
    try:
        out["restart_ready_s"] = round(restarted.wait_ready(), 2)
        # a crash while patients are held: a trickle, then SIGKILL with their samples unwritten
        after_burst = first + len(burst) // args.patients
        held = live_events(args.patients, int(args.rate * args.seconds), after_burst, rng)
        publish(settings, held, rate=args.rate)
        wait_drained(settings, topic)
        restarted.process.kill()
        restarted.process.wait(timeout=60)
    finally:
        restarted.stop()
    replacement = WorkerUnderTest(settings, state_dir, 6194)
    try:
        ready_s = replacement.wait_ready()
        cpu0, t0 = cpu_seconds(replacement.pid), time.perf_counter()
        settle(replacement.pid)  # the replay of the held samples, and the store's compactions
        out["crash_restart"] = {
            "trickle_events_before_the_kill": len(held),
            "ready_s": round(ready_s, 2),
            "replay_settled_s": round(time.perf_counter() - t0, 1),
            "replay_cpu_s": round(cpu_seconds(replacement.pid) - cpu0, 2),
        }
    finally:
        replacement.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rate", type=float, default=500.0, help="live trickle, events per second")
    parser.add_argument("--seconds", type=float, default=40.0, help="length of the live trickle")
    parser.add_argument("--burst", type=int, default=100_000)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--backfill-patients", type=int, default=10)
    parser.add_argument("--cache-patients", type=int, default=10_000)
    parser.add_argument(
        "--static-membership",
        action="store_true",
        help="the live phase's workers join as static members (NOVAMIND_WORKER__STATIC_MEMBERSHIP)",
    )
    parser.add_argument(
        "--write-delay",
        type=float,
        default=None,
        help="NOVAMIND_WORKER__STATE_WRITE_DELAY_S of the live phase's worker (default: the setting's)",
    )
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    run = f"live-{time.strftime('%H%M%S')}"
    base = Settings()
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        work = Path(tmp)
        backfill = backfill_phase(base, run, args.backfill_patients, args.days, work)
        live = live_phase(base, run, args, work)
    ratio = live["trickle"]["cpu_ms_per_event"] / backfill["cpu_ms_per_event"]
    busy_ratio = live["trickle"]["cpu_ms_per_event_above_idle"] / backfill["cpu_ms_per_event"]
    steady_ratio = live["trickle_steady"]["cpu_ms_per_event_above_idle"] / backfill["cpu_ms_per_event"]
    day_ratio = live["patient_day_cpu_ms_per_event"] / backfill["cpu_ms_per_event"]
    # what reading the stream costs any consumer, live and in a backfill, and the rest: the
    # worker's own work per event (fold, state, changelog, transactions) in each regime
    steady = live["trickle_steady"]
    bare_live = steady["bare_consume_decode_ms_per_event_above_idle"]
    bare_backfill = backfill["bare_cpu_ms_per_event"]
    own_live = steady["cpu_ms_per_event_above_idle"] - bare_live
    own_backfill = backfill["cpu_ms_per_event"] - bare_backfill
    result = {
        "bench": "live",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "backfill": backfill,
        "live": live,
        "live_to_backfill_cpu_per_event": round(ratio, 2),
        "live_above_idle_to_backfill_cpu_per_event": round(busy_ratio, 2),
        "steady_above_idle_to_backfill_cpu_per_event": round(steady_ratio, 2),
        "patient_day_to_backfill_cpu_per_event": round(day_ratio, 2),
        "bare_steady_to_bare_backfill_cpu_per_event": round(bare_live / bare_backfill, 2),
        "worker_own_steady_to_own_backfill_cpu_per_event": round(own_live / own_backfill, 2),
    }
    RESULTS.mkdir(exist_ok=True)
    name = f"live_{args.tag}" if args.tag else "live"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
