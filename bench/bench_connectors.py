"""Connector throughput on the real broker, beside a bare confluent-kafka producer loop.

Runs the connector jobs that ``novamind connect`` runs (``connectors.jobs``: read, map,
encode, audit, produce, flush) on (1) Synthea-like FHIR patient Bundles and (2) an Apple
Health ``export.xml``, then reads the produced messages back and sends exactly the same keys
and bytes with a bare confluent-kafka producer loop (same idempotent acks=all lz4
configuration) to a fresh topic. Both rates come from the same run; their ratio is what to
compare across machines. Writes bench/results/connectors.json.

Run: ``.venv/bin/python -m bench.bench_connectors [--bundles 10] [--samples 100000]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr

from connectors.delivery import ImportSummary
from connectors.ehr import FhirMapper
from connectors.ehr.reader import iter_resources
from connectors.jobs import JobResult, WearableFormat, run_fhir_files, run_wearable
from connectors.simulator.synthea import synthea_like_bundle
from connectors.sources import apple_health_records, fhir_records
from novamind.platform.kafka import admin_config, producer_config
from novamind.platform.settings import SecuritySettings, Settings
from novamind.platform.topicadmin import ensure_topics
from novamind.platform.topicreader import read_all
from schemas.topics import TopicName

RESULTS = Path(__file__).parent / "results"
KEY = "bench-pseudonym-key-0123456789abcdef"
PATIENT = "p_" + "be" * 16


def completed(result: JobResult) -> JobResult:
    """The result of a connector run that must have delivered everything."""
    if not result.complete:
        raise SystemExit(f"connector run failed: {result.as_dict()}")
    return result


def bare_loop(settings: Settings, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Records/s of a plain produce loop (backpressure on BufferError) plus the final flush."""
    admin = AdminClient(admin_config(settings.kafka))
    new = NewTopic(topic, num_partitions=settings.kafka.partitions, replication_factor=1)
    admin.create_topics([new])[topic].result(timeout=30)
    producer = Producer(producer_config(settings.kafka, client_id="bench-bare"))
    producer.list_topics(
        topic, timeout=30
    )  # connected and the new topic's leaders known, as for the connector
    acked = 0

    def report(err: Any, _msg: Any) -> None:
        nonlocal acked
        acked += err is None

    started = time.perf_counter()
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(120)
    elapsed = time.perf_counter() - started
    if acked != len(messages):
        raise SystemExit(f"bare loop: {len(messages) - acked} records not acknowledged")
    return len(messages) / elapsed


def produced_messages(settings: Settings, topic: str) -> list[tuple[bytes, bytes]]:
    return [(m.key(), m.value()) for m in read_all(settings.kafka, settings.kafka.topic(topic))]


def write_export(path: Path, samples: int) -> None:
    """An export.xml of heart-rate, step and sleep records, 30 s apart (Watch-like)."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    stages = ("HKCategoryValueSleepAnalysisAsleepCore", "HKCategoryValueSleepAnalysisAsleepREM")
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_US">\n')
        for i in range(samples):
            begin = start + timedelta(seconds=30 * i)
            t0 = begin.strftime("%Y-%m-%d %H:%M:%S +0000")
            t1 = (begin + timedelta(seconds=30)).strftime("%Y-%m-%d %H:%M:%S +0000")
            if i % 10 == 9:
                kind, extra = "HKQuantityTypeIdentifierStepCount", f'unit="count" value="{i % 60}"'
            elif i % 10 == 8:
                kind, extra = "HKCategoryTypeIdentifierSleepAnalysis", f'value="{stages[i % 2]}"'
            else:
                kind, extra = "HKQuantityTypeIdentifierHeartRate", f'unit="count/min" value="{55 + i % 50}"'
            out.write(
                f' <Record type="{kind}" sourceName="Watch" {extra} startDate="{t0}" endDate="{t1}"/>\n'
            )
        out.write("</HealthData>\n")


def map_only(records: Iterable[Any], summary: ImportSummary) -> float:
    """Input items/s of reading and mapping alone (no encoding, no Kafka), for context."""
    started = time.perf_counter()
    for _ in records:
        pass
    return summary.read / (time.perf_counter() - started)


def compare(
    settings: Settings, *, topic: str, bare_topic: str, result: JobResult, unit: str
) -> dict[str, Any]:
    messages = produced_messages(settings, topic)
    summary = result.summary
    if len(messages) != result.produced:
        raise SystemExit(f"{topic}: {len(messages)} messages on the topic, the run says {result.produced}")
    bare = bare_loop(settings, settings.kafka.topic(bare_topic), messages)
    connector = result.produced / summary.seconds
    return {
        unit: summary.read,
        "records_produced": result.produced,
        "bytes_produced": sum(len(k or b"") + len(v) for k, v in messages),
        "rejected": result.rejected,
        "connector_seconds": round(summary.seconds, 2),
        f"connector_{unit}_per_s": round(summary.read / summary.seconds),
        "connector_records_per_s": round(connector),
        "bare_producer_records_per_s": round(bare),
        "ratio_connector_to_bare": round(connector / bare, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundles", type=int, default=10, help="Synthea-like ~1 MB patient bundles")
    parser.add_argument("--samples", type=int, default=100_000, help="Apple Health records")
    args = parser.parse_args()
    run = f"bench-connect-{time.strftime('%H%M%S')}"
    base = Settings()
    settings = base.model_copy(
        update={
            "kafka": base.kafka.model_copy(update={"topic_prefix": f"{run}."}),
            "mongo": base.mongo.model_copy(update={"database": f"novamind_{run.replace('-', '_')}"}),
            "security": SecuritySettings(pseudonym_key=SecretStr(KEY)),
        }
    )
    with contextlib.redirect_stdout(io.StringIO()):
        ensure_topics(settings.kafka)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "fhir"
        folder.mkdir()
        for seed in range(args.bundles):
            (folder / f"patient-{seed}.json").write_text(json.dumps(synthea_like_bundle(seed=seed)))
        fhir_bytes = sum(p.stat().st_size for p in folder.iterdir())
        warm_up = FhirMapper(key=KEY.encode(), as_of=date(2025, 1, 1))  # build the R4B models once
        sum(1 for _ in warm_up.map_path(folder / "patient-0.json"))
        fhir = completed(run_fhir_files([folder], settings, as_of=date(2025, 1, 1)))
        mapper, counts = FhirMapper(key=KEY.encode(), as_of=date(2025, 1, 1)), ImportSummary()
        fhir_map_only = map_only(fhir_records(iter_resources(folder), mapper, counts), counts)
        export = Path(tmp) / "export.xml"
        write_export(export, args.samples)
        export_bytes = export.stat().st_size
        wear = completed(run_wearable(WearableFormat.APPLE_HEALTH, [export], settings, patient=PATIENT))
        counts = ImportSummary()
        samples = apple_health_records(
            [export], patient_id=PATIENT, device_id="d_" + "0" * 32, summary=counts
        )
        wear_map_only = map_only(samples, counts)
    result = {
        "bench": "connectors",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "fhir": {
            "bundles": args.bundles,
            "input_bytes": fhir_bytes,
            "map_only_resources_per_s": round(fhir_map_only),
            **compare(
                settings,
                topic=TopicName.EHR_CLINICAL_EVENTS,
                bare_topic="bare-fhir",
                result=fhir,
                unit="resources",
            ),
        },
        "wearables_apple_health": {
            "input_bytes": export_bytes,
            "map_only_samples_per_s": round(wear_map_only),
            **compare(
                settings,
                topic=TopicName.WEARABLE_BIOMETRICS,
                bare_topic="bare-wear",
                result=wear,
                unit="samples",
            ),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "connectors.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
