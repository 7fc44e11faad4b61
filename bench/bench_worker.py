"""Worker throughput on the real broker, beside the bare consume-and-decode ceiling.

Publishes a simulated cohort's biometrics, then (1) drains the topic with a bare
confluent-kafka consumer plus fastavro decode, (2) drains it again folding each batch into
in-memory window state as the worker does (no store, changelog, outputs or transactions), and
(3) runs one ``novamind worker`` until its group has committed the whole topic. All rates are
measured in the same run; the ratios are what to compare across machines. Writes bench/results/worker.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from confluent_kafka import Consumer, Message, TopicPartition

from connectors.simulator import simulate
from connectors.simulator.publish import publish
from novamind.platform.kafka import consumer_config
from novamind.platform.lag import end_offsets, group_lag
from novamind.platform.producer import EventProducer
from novamind.platform.settings import PROJECT_ROOT, Settings
from novamind.platform.topicadmin import ensure_topics
from schemas.codec import AvroCodec
from schemas.exceptions import SchemaError
from schemas.topics import WORKERS_GROUP, TopicName
from workers.pipeline.ingest import IngestProcessor
from workers.runtime.worker import inbound

RESULTS = Path(__file__).parent / "results"


def _drain(settings: Settings, topic: str, total: int, handle: Callable[[list[Message]], object]) -> float:
    """Records per second a fresh consumer reads ``topic`` from the start, ``handle`` applied to
    each batch it consumes."""
    consumer = Consumer(consumer_config(settings.kafka, group_id=f"bare-{time.time_ns()}", client_id="bare"))
    ends = end_offsets(settings.kafka, [topic])
    consumer.assign([TopicPartition(topic, p, 0) for (_, p) in ends])
    seen = 0
    started = time.perf_counter()
    while seen < total:
        batch = [m for m in consumer.consume(2000, timeout=1.0) if m.error() is None]
        handle(batch)
        seen += len(batch)
    elapsed = time.perf_counter() - started
    consumer.close()
    return seen / elapsed


def decode_as_the_worker(codec: AvroCodec, batch: list[Message]) -> None:
    """Decode every record of ``batch`` as the worker decodes it, keeping nothing."""
    for message in batch:
        with contextlib.suppress(SchemaError):  # bad records still count as consumed
            codec.decode_dict(message.value() or b"", logical=False)


def bare_ceiling(settings: Settings, topic: str, total: int) -> float:
    """Consume and decode only, as the worker decodes."""
    return _drain(settings, topic, total, partial(decode_as_the_worker, AvroCodec()))


def fold_ceiling(settings: Settings, topic: str, total: int) -> float:
    """Consume, decode and fold into in-memory window state: the worker's own per-event work
    (validation, deduplication, windows, day-close features) without its store, changelog,
    outputs or transactions. What a worker with this fold reaches at best."""
    ingest = IngestProcessor(codec=AvroCodec(), entries={})

    def fold(batch: list[Message]) -> None:
        ingest.process(inbound(m) for m in batch)

    return _drain(settings, topic, total, fold)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args()
    run = f"bench-{time.strftime('%H%M%S')}"
    base = Settings()
    settings = base.model_copy(
        update={
            "kafka": base.kafka.model_copy(update={"topic_prefix": f"{run}."}),
            "mongo": base.mongo.model_copy(update={"database": f"novamind_{run}"}),
        }
    )
    ensure_topics(settings.kafka)
    cohort = simulate(args.patients, args.days, 5, dt.date(2026, 2, 2))
    biometrics = [d for d in cohort.deliveries if d["record_type"] == "BiometricSample"]
    producer = EventProducer(kafka=settings.kafka, client_id="bench")
    produced = publish(biometrics, producer=producer, codec=AvroCodec(), topic_name=settings.kafka.topic)
    topic = settings.kafka.topic(TopicName.WEARABLE_BIOMETRICS)
    total = len(biometrics)
    ceiling = bare_ceiling(settings, topic, total)
    fold_rate = fold_ceiling(settings, topic, total)

    env = {
        **os.environ,
        "NOVAMIND_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "NOVAMIND_MONGO__DATABASE": settings.mongo.database,
        "NOVAMIND_LOG_LEVEL": "WARNING",
    }
    started = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "-m", "novamind.app.cli", "worker", "--web-port", "6099"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    group = settings.kafka.topic(WORKERS_GROUP)
    first_progress: tuple[float, int] | None = None  # (time, records left) at the first commit
    try:
        while (left := sum(group_lag(settings.kafka, group, [topic]).values())) > 0:
            if first_progress is None and left < total:
                first_progress = (time.perf_counter(), left)
            time.sleep(0.2)
        finished = time.perf_counter()
        elapsed = finished - started
        rss_kb = int(Path(f"/proc/{worker.pid}/status").read_text().split("VmRSS:")[1].split()[0])
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    worker_rate = total / elapsed
    # Sustained: from the first committed batch to the end (excludes start-up and group join).
    since, left_then = first_progress or (started, total)
    sustained = left_then / (finished - since) if finished > since else worker_rate
    result = {
        "bench": "worker",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "biometric_events": total,
        "producer": produced,
        "bare_consume_decode_per_s": round(ceiling),
        "worker_events_per_s_incl_startup": round(worker_rate),
        "worker_events_per_s_sustained": round(sustained),
        "ratio_worker_to_bare": round(sustained / ceiling, 3),
        "consume_decode_fold_per_s": round(fold_rate),
        "ratio_fold_to_bare": round(fold_rate / ceiling, 3),
        "ratio_worker_to_fold": round(sustained / fold_rate, 3),
        "worker_rss_mb": round(rss_kb / 1024, 1),
        "patients": args.patients,
        "days": args.days,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "worker.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
