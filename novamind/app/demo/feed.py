"""Feed the cohort one UTC day at a time through the product's entry points.

Each round (:mod:`novamind.app.demo.plan`) writes that day's vendor files with
``connectors.simulator.emit`` and imports them with the jobs ``novamind connect`` runs
(``connectors.jobs``, in this process), submits the day's reports to the intake over HTTP,
publishes what no vendor file carries with the simulator's publisher, and then waits until
the workers have consumed the source topics. Waiting keeps a patient's streams level, as
they are live: a day closes with all of its data in it, and the twins learn from it.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from connectors.delivery import Encoder, Producer
from connectors.exceptions import ConnectorError
from connectors.jobs import JobResult, WearableFormat, run_fhir_files, run_wearable
from connectors.simulator import SimulationResult
from connectors.simulator.emit import write_fhir, write_fitbit, write_omh
from connectors.simulator.publish import publish
from novamind.app.demo.exceptions import DemoError, DemoInterrupted
from novamind.app.demo.plan import DIRECT, FHIR, FITBIT, INTAKE, OPENMHEALTH, Round, intake_submission
from novamind.app.demo.processes import Service, check_alive
from novamind.platform.kafka import consumer_config
from novamind.platform.settings import KafkaSettings, Settings

ROUND_TIMEOUT_S = 300.0
INTAKE_THREADS = 8
INTAKE_ATTEMPTS = 5


@dataclasses.dataclass
class FeedTotals:
    """What went in, by route: records Kafka acknowledged, files, runs, refusals."""

    produced: Counter[str] = dataclasses.field(default_factory=Counter)
    files: Counter[str] = dataclasses.field(default_factory=Counter)
    runs: Counter[str] = dataclasses.field(default_factory=Counter)
    rejected: Counter[str] = dataclasses.field(default_factory=Counter)
    intake_status: Counter[int] = dataclasses.field(default_factory=Counter)
    waited_s: float = 0.0


class IntakeClient:
    """Submits reports as each patient's app would: its bearer token, its own pseudonym."""

    def __init__(self, port: int, tokens: dict[str, str]) -> None:
        self.base = f"http://127.0.0.1:{port}/v1/patients"
        self.tokens = tokens  # pseudonym -> token
        self.pool = ThreadPoolExecutor(max_workers=INTAKE_THREADS, thread_name_prefix="intake")

    def submit(self, items: Sequence[tuple[str, str, dict[str, Any]]]) -> Counter[int]:
        """POST every ``(patient, endpoint, body)``; the HTTP statuses."""
        return Counter(self.pool.map(lambda item: self._post(*item), items))

    def _post(self, patient: str, endpoint: str, body: dict[str, Any]) -> int:
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            f"{self.base}/{patient}/{endpoint}",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.tokens[patient]}", "Content-Type": "application/json"},
            method="POST",
        )
        for attempt in range(INTAKE_ATTEMPTS):
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                    return int(answer.status)
            except urllib.error.HTTPError as exc:
                if exc.code != 503 or attempt == INTAKE_ATTEMPTS - 1:
                    return exc.code
                time.sleep(float(exc.headers.get("Retry-After") or 1))
            except (urllib.error.URLError, ConnectionError) as exc:
                if attempt == INTAKE_ATTEMPTS - 1:
                    raise DemoError(f"the intake does not answer: {exc}") from exc
                time.sleep(1.0)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class LagProbe:
    """Records of some topics the workers' group has not committed yet (one reused client)."""

    def __init__(self, kafka: KafkaSettings, group: str, topics: Sequence[str]) -> None:
        self.consumer = Consumer(consumer_config(kafka, group_id=group, client_id="demo-lag-probe"))
        self.partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in self.consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ]

    def lag(self) -> int | None:
        """The total lag, or None while the broker cannot say."""
        try:
            committed = self.consumer.committed(self.partitions, timeout=10)
            total = 0
            for tp in committed:
                end = TopicPartition(tp.topic, tp.partition)
                _, high = self.consumer.get_watermark_offsets(end, timeout=10)
                total += max(high - max(tp.offset, 0), 0)
            return total
        except KafkaException:
            return None

    def close(self) -> None:
        self.consumer.close()


class Feed:
    """Runs the rounds; ``totals`` accumulates what each route delivered."""

    def __init__(
        self,
        *,
        result: SimulationResult,
        settings: Settings,
        vendor_dir: Path,
        intake: IntakeClient,
        producer: Producer,
        codec: Encoder,
        probe: LagProbe,
        services: Sequence[Service],
    ) -> None:
        self.result = result
        self.settings = settings
        self.vendor_dir = vendor_dir
        self.intake = intake
        self.producer = producer
        self.codec = codec
        self.probe = probe
        self.services = services
        self.zones = {p.patient_id: p.time_zone for p in result.patients}
        self.totals = FeedTotals()

    def run_round(self, r: Round) -> None:
        """One UTC day: EHR, wearables, direct records, reports; then the workers catch up."""
        self._fhir(r)
        self._fitbit(r)
        self._openmhealth(r)
        self._direct(r)
        self._reports(r)
        started = time.monotonic()
        while (lag := self.probe.lag()) != 0:
            check_alive(self.services)
            if time.monotonic() - started > ROUND_TIMEOUT_S:
                raise DemoError(
                    f"the workers did not catch up with {r.date} within {ROUND_TIMEOUT_S:.0f}s "
                    f"({lag} records left); see the worker logs"
                )
            time.sleep(0.1)
        self.totals.waited_s += time.monotonic() - started

    def _subset(self, r: Round, name: str) -> SimulationResult:
        """The simulation narrowed to one route of one round: what the emitters write."""
        patients = set(r.patients(name))
        return dataclasses.replace(
            self.result,
            patients=[p for p in self.result.patients if p.patient_id in patients],
            deliveries=r.routes[name],
        )

    def _connect(self, name: str, run: Callable[[], JobResult]) -> None:
        """Run one import; rejected items are counted, not printed."""
        try:
            result = run()
        except ConnectorError as exc:
            raise DemoError(f"the {name} import cannot start: {exc}") from exc
        if result.summary.interrupted is not None:
            raise DemoInterrupted(f"the {name} import was interrupted")
        if not result.complete:
            missing = result.summary.unacknowledged + sum(result.summary.failed.values())
            detail = result.error or f"{missing} records not acknowledged by Kafka"
            raise DemoError(f"the {name} import failed: {detail}")
        self.totals.runs[name] += 1
        self.totals.produced[name] += result.produced
        self.totals.rejected[name] += result.rejected

    def _fhir(self, r: Round) -> None:
        if not r.count(FHIR):
            return
        folder = self.vendor_dir / "fhir" / r.date.isoformat()
        self.totals.files[FHIR] += len(write_fhir(self._subset(r, FHIR), folder))
        self._connect(FHIR, partial(run_fhir_files, [folder], self.settings, as_of=self.result.start_date))

    def _fitbit(self, r: Round) -> None:
        if not r.count(FITBIT):
            return
        files: dict[str, list[Path]] = defaultdict(list)
        folder = self.vendor_dir / "fitbit" / r.date.isoformat()
        for path in write_fitbit(self._subset(r, FITBIT), folder):
            files[path.parent.name].append(path)  # <pseudonym>/<local date>-<endpoint>.json
        for patient, paths in files.items():
            self.totals.files[FITBIT] += len(paths)
            zone = self.zones[patient]
            self._connect(
                FITBIT,
                partial(
                    run_wearable, WearableFormat.FITBIT, paths, self.settings, patient=patient, time_zone=zone
                ),
            )

    def _openmhealth(self, r: Round) -> None:
        if not r.count(OPENMHEALTH):
            return
        folder = self.vendor_dir / "openmhealth" / r.date.isoformat()
        for path in write_omh(self._subset(r, OPENMHEALTH), folder):  # <pseudonym>.json
            self.totals.files[OPENMHEALTH] += 1
            self._connect(
                OPENMHEALTH,
                partial(run_wearable, WearableFormat.OPENMHEALTH, [path], self.settings, patient=path.stem),
            )

    def _direct(self, r: Round) -> None:
        if not r.count(DIRECT):
            return
        summary = publish(
            r.routes[DIRECT], producer=self.producer, codec=self.codec, topic_name=self.settings.kafka.topic
        )
        if summary["unacknowledged"]:
            missing = summary["unacknowledged"]
            raise DemoError(f"Kafka did not acknowledge {missing} directly published records")
        self.totals.produced[DIRECT] += sum(summary["produced"].values())
        self.totals.rejected[DIRECT] += sum(summary["rejected"].values())

    def _reports(self, r: Round) -> None:
        items = [
            (d["record"]["patient_id"], *intake_submission(d["record_type"], d["record"]))
            for d in r.routes.get(INTAKE, ())
        ]
        if not items:
            return
        statuses = self.intake.submit(items)
        self.totals.intake_status.update(statuses)
        self.totals.produced[INTAKE] += statuses[201] + statuses[200]
