"""Worker throughput on the real broker, beside the bare consume-and-decode ceiling.

Publishes a simulated cohort's biometrics, then (1) drains the topic with a bare
confluent-kafka consumer plus fastavro decode, and (2) runs one ``novamind worker`` until its
group has committed the whole topic. Both rates are measured in the same run; the ratio is
what to compare across machines. Writes bench/results/worker.json.
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
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

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

RESULTS = Path(__file__).parent / "results"


def bare_ceiling(settings: Settings, topic: str, total: int) -> float:
    codec = AvroCodec()
    consumer = Consumer(consumer_config(settings.kafka, group_id=f"bare-{time.time_ns()}", client_id="bare"))
    ends = end_offsets(settings.kafka, [topic])
    consumer.assign([TopicPartition(topic, p, 0) for (_, p) in ends])
    seen = 0
    started = time.perf_counter()
    while seen < total:
        for message in consumer.consume(2000, timeout=1.0):
            if message.error() is None:
                with contextlib.suppress(SchemaError):  # bad records still count as consumed
                    codec.decode_dict(message.value(), logical=False)  # as the worker decodes
                seen += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    return seen / elapsed


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
        "worker_rss_mb": round(rss_kb / 1024, 1),
        "patients": args.patients,
        "days": args.days,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "worker.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
