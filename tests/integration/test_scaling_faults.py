"""Scaling and fault tolerance on the real services; after each scenario the outputs equal the
one-pass references (tests/integration/checks.py): nothing acknowledged is lost, nothing is
applied twice, twins equal the replay, dead letters hold exactly the bad inputs.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from novamind.app.localservices import LocalServices
from novamind.platform import lag
from novamind.platform.producer import EventProducer
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from schemas.topics import WORKERS_GROUP
from tests.integration.checks import assert_twins_equal_replay, check_outputs, publish_cohort, publish_rest
from tests.integration.harness import (
    WorkerProcess,
    isolated,
    read_topic,
    reader_codec,
    wait_caught_up,
    workers,
)
from tests.services import ServiceAddresses
from workers.runtime.worker import SOURCE_TOPICS

codec = AvroCodec()


def _left(settings: Settings) -> int:
    topics = [settings.kafka.topic(t) for t in SOURCE_TOPICS]
    return sum(lag.group_lag(settings.kafka, settings.kafka.topic(WORKERS_GROUP), topics).values())


def _wait_progress(
    settings: Settings, running: list[WorkerProcess], below: int, timeout_s: float = 120
) -> int:
    """Until fewer than ``below`` source records are left to commit; returns how many are left."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for worker in running:
            assert worker.alive(), worker.log()[-3000:]
        left = _left(settings)
        if left < below:
            return left
        time.sleep(0.2)
    raise AssertionError(f"no progress below {below} records within {timeout_s}s")


def _wait_for_log(worker: WorkerProcess, event: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while event not in worker.log():
        assert worker.alive(), worker.log()[-3000:]
        assert time.monotonic() < deadline, f"{worker.log_path.name}: no {event} within {timeout_s}s"
        time.sleep(0.2)


def _local(services: ServiceAddresses) -> LocalServices:
    if services.origin != "local":
        pytest.skip("stops and starts the Docker-free local services")
    return LocalServices(settings=Settings().local)


def test_replicas_join_and_leave_mid_stream(settings: Settings, run_id: str, tmp_path: Path) -> None:
    scenario = isolated(settings, f"scale-{run_id}", max_batch=400)  # many small commits
    # 2+ patients per partition; the last part of the stream arrives after the replicas joined
    cohort = publish_cohort(scenario, patients=16, days=21, seed=21, share=0.7)
    total = _left(scenario)
    # One replica starts (and moves every partition forward); two join mid-stream, so three
    # share the partitions; then the first leaves while records are still flowing.
    with workers(scenario, tmp_path, count=1) as running:
        _wait_progress(scenario, running, below=int(total * 0.9))
        joined = [WorkerProcess(scenario, tmp_path, f"worker-joined-{i}") for i in (1, 2)]
        running.extend(joined)
        for worker in joined:
            _wait_for_log(worker, "state_restored")  # got partitions
        publish_rest(scenario, cohort, share=0.7)
        for worker in joined:
            _wait_for_log(worker, "ingest_batch")  # got partitions and works on them
        assert _left(scenario) > 0, "the stream ended before the replicas joined"
        running[0].stop()  # SIGTERM: finishes its batch, commits, leaves the group
        wait_caught_up(scenario, running[1:])
        for worker in running:  # every replica did part of the work
            assert "ingest_batch" in worker.log(), worker.log_path.name
        assert "worker_stopped" in running[0].log()
    check_outputs(scenario, cohort)
    assert assert_twins_equal_replay(scenario) == 16


def _outage(
    settings: Settings,
    services: ServiceAddresses,
    tmp_path: Path,
    *,
    name: str,
    service: str,
    replicas: int,
    down_s: float,
    seed: int,
    felt: str | None = None,
) -> tuple[Settings, list[WorkerProcess]]:
    """Stop ``service`` for ``down_s`` while the workers are mid-stream; check the outputs after.
    With ``felt``, the last part of the cohort is published once the service is down, and the
    outage lasts until a worker has logged that event too (at most 120 s more): the workers
    meet the outage however fast they drained the first part."""
    local = _local(services)
    scenario = isolated(settings, name, max_batch=1500)
    share = 0.6 if felt else 1.0
    cohort = publish_cohort(scenario, patients=6, days=28, seed=seed, share=share)
    total = _left(scenario)
    with workers(scenario, tmp_path, count=replicas) as running:
        _wait_progress(scenario, running, below=int(total * 0.8))
        local.stop(service)
        if felt:
            publish_rest(scenario, cohort, share=share)
        time.sleep(down_s)
        deadline = time.monotonic() + 120
        while felt and not any(felt in w.log() for w in running) and time.monotonic() < deadline:
            time.sleep(0.5)
        for worker in running:  # backing off, neither crashing nor skipping
            assert worker.alive(), worker.log()[-3000:]
        local.start(service)
        wait_caught_up(scenario, running, timeout_s=300)
    check_outputs(scenario, cohort)
    assert assert_twins_equal_replay(scenario) == 6
    return scenario, running


def test_broker_restart_under_load(
    settings: Settings, services: ServiceAddresses, run_id: str, tmp_path: Path
) -> None:
    _outage(
        settings, services, tmp_path, name=f"brk-{run_id}", service="kafka", replicas=2, down_s=3, seed=22
    )


def test_mongodb_outage_under_load(
    settings: Settings, services: ServiceAddresses, run_id: str, tmp_path: Path
) -> None:
    scenario, running = _outage(
        settings,
        services,
        tmp_path,
        name=f"mgo-{run_id}",
        service="ferretdb",
        replicas=1,
        down_s=12,
        seed=23,
        felt="mongo_retry",
    )
    assert "mongo_retry" in running[0].log()
    reader = reader_codec(scenario)
    alerts = [reader.decode_dict(m.value())[1] for m in read_topic(scenario, "pipeline-alerts")]
    assert "twin_store" in {a["step"] for a in alerts}


def test_poison_messages_in_every_topic(settings: Settings, run_id: str, tmp_path: Path) -> None:
    scenario = isolated(settings, f"psn-{run_id}")
    cohort = publish_cohort(scenario, patients=3, days=10, seed=24)
    producer = EventProducer(kafka=scenario.kafka, client_id="poison")
    patient = cohort.deliveries[0]["record"]["patient_id"]
    valid = codec.encode_dict(cohort.deliveries[0]["record_type"], cohort.deliveries[0]["record"])
    poison = [
        (b"\xff\xfe not a pseudonym", b"\x00\x01 garbage"),  # undecodable key and value
        (patient.encode(), b"\xc3\x01" + b"\x00" * 8 + b"truncated"),  # right marker, bad body
        (b"p_" + b"0" * 32, valid),  # valid record under another patient's key
    ]
    for topic in (*SOURCE_TOPICS, "twin-inputs"):
        for key, value in poison:
            producer.send(scenario.kafka.topic(topic), key=key, value=value)
    assert producer.flush(30) == 0
    with workers(scenario, tmp_path, count=1) as running:
        wait_caught_up(scenario, running)
        assert running[0].alive()
    check_outputs(scenario, cohort)  # source-topic dead letters equal the reference's
    assert_twins_equal_replay(scenario)
    reader = reader_codec(scenario)
    dead = [reader.decode_dict(m.value())[1] for m in read_topic(scenario, "pipeline-deadletter")]
    from_twin_inputs = [d for d in dead if d["source_topic"] == scenario.kafka.topic("twin-inputs")]
    assert sorted(d["original_value"] for d in from_twin_inputs) == sorted(v for _, v in poison)
    for topic in SOURCE_TOPICS:
        values = {d["original_value"] for d in dead if d["source_topic"] == scenario.kafka.topic(topic)}
        assert {v for _, v in poison} <= values, topic
