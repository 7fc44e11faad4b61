"""End to end: the cohort's real identifiers and free text appear nowhere in the clear.

The simulator's cohort gets the identities an EHR holds for it: the simulator's MRN, a name,
its birth date, a phone number, an address, a wearable account id, plus free text (a clinical
note on a Condition in its FHIR Bundle and symptom notes sent to the intake). The simulator
itself writes no names or notes (its names are "Synthetic <MRN>", its notes are empty), so
they are added to its vendor files here. Everything then goes through the product's own entry
points, as subprocesses logging JSON where the entry point is a process:

* ``novamind connect fhir`` on the simulator's FHIR Bundles;
* the Fitbit and Open mHealth jobs (``connectors.jobs``, in this process) on its Fitbit Web API
  responses and Open mHealth points, identifying the patient by MRN and the account by its
  vendor id, as an operator would; their results, rejection notes and log events are scanned
  like a process's output;
* ``novamind intake serve`` for the cohort's symptom reports, notes included;
* worker replicas started by ``tests/integration/harness.py``, until they have caught up;
* ``novamind dataset export``.

Then every topic under the run's prefix (keys, values, headers), every log line of every
process, every document of the run's database (twin states decompressed) and every exported
file (raw bytes and decoded Avro) is scanned for each identifier and note, case-insensitively.
None may appear. The same scanner must find identifiers planted in each kind of place, so the
check can fail.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from fastavro import reader, writer
from pydantic import SecretStr
from pymongo import MongoClient
from structlog.testing import capture_logs

from connectors.intake import token_digest
from connectors.jobs import JobResult, Reporting, WearableFormat, run_wearable
from connectors.simulator import SimPatient, simulate
from connectors.simulator.cohort import SIM_KEY
from connectors.simulator.emit import write_fhir, write_fitbit, write_omh
from novamind.app.datasets.schema import training_schema
from novamind.platform.kafka import admin_config
from novamind.platform.producer import EventProducer
from novamind.platform.settings import PROJECT_ROOT, SecuritySettings, Settings
from novamind.platform.topicreader import read_all
from tests.integration.harness import isolated, wait_caught_up, worker_env, workers

NOVAMIND = str(Path(sys.executable).parent / "novamind")
PATIENTS, DAYS = 3, 14
STATE_MAGIC = b"NMTW1"  # workers.twin.serialize: magic + SHA-256 + zlib body
GIVEN = ("Marisol", "Thaddeus", "Ingeborg")
FAMILY = ("Quintanilla-Haverford", "Okonkwo-Lindqvist", "Baumgartner-Achebe")
SOURCES = ("ehr-clinical-events", "wearable-biometrics", "patient-reports")


@dataclass(frozen=True)
class Identity:
    """What the hospital and the vendors know about one simulated patient."""

    patient: SimPatient
    given: str
    family: str
    phone: str
    address: str
    device_user: str
    clinical_note: str
    symptom_note: str

    def needles(self) -> dict[str, str]:
        p = self.patient
        return {
            "mrn": p.mrn,
            "name": f"{self.given} {self.family}",
            "given name": self.given,
            "family name": self.family,
            "birth date": p.birth_date.isoformat(),
            "phone": self.phone,
            "address": self.address,
            "device user": self.device_user,
            "clinical note": self.clinical_note,
            "clinical note phrase": self.clinical_note.split(",")[0],
            "symptom note": self.symptom_note,
            "symptom note phrase": self.symptom_note.split(",")[0],
        }


def _identities(patients: list[SimPatient]) -> list[Identity]:
    return [
        Identity(
            patient=p,
            given=GIVEN[i],
            family=FAMILY[i],
            phone=f"+1 617 555 01{40 + i}",
            address=f"{4417 + i} Larchmont Crescent, Apt {7 + i}",
            device_user=f"{p.vendor}-acct-QX7{i}Z",
            clinical_note=f"Patient disclosed passive ideation after the Brightwater layoff {i}, "
            "lives with partner, declined inpatient referral",
            symptom_note=f"Argued with my sister Rosalind about the Halvorsen house {i}, "
            "could not sleep until four",
        )
        for i, p in enumerate(patients)
    ]


# ------------------------------------------------------------------ the scanner
Hit = tuple[str, str]  # (where, what)


class Scanner:
    """Case-insensitive search of raw bytes for every needle."""

    def __init__(self, needles: dict[str, str]) -> None:
        self.needles = {label: text.lower().encode() for label, text in needles.items()}
        self.scanned: Counter[str] = Counter()

    def bytes(self, where: str, blob: bytes | None, kind: str) -> list[Hit]:
        self.scanned[kind] += 1
        low = (blob or b"").lower()
        return [(where, label) for label, needle in self.needles.items() if needle in low]

    def topics(self, settings: Settings) -> tuple[list[Hit], dict[str, int]]:
        """Every message of every topic under the prefix: key, value and headers."""
        admin = AdminClient(admin_config(settings.kafka))
        names = sorted(
            t for t in admin.list_topics(timeout=30).topics if t.startswith(settings.kafka.topic_prefix)
        )
        hits: list[Hit] = []
        counts = {}
        for topic in names:
            messages = _read(settings, topic)
            counts[topic.removeprefix(settings.kafka.topic_prefix)] = len(messages)
            for m in messages:
                where = f"{topic}[{m.partition()}]@{m.offset()}"
                headers = b"".join(k.encode() + (v or b"") for k, v in m.headers() or [])
                hits += self.bytes(where + " key", m.key(), "messages")
                hits += self.bytes(where + " value", m.value(), "messages")
                hits += self.bytes(where + " headers", headers, "messages")
        return hits, counts

    def lines(self, source: str, text: str) -> list[Hit]:
        return [
            h
            for n, line in enumerate(text.splitlines(), 1)
            for h in self.bytes(f"{source}:{n}", line.encode(), "log lines")
        ]

    def database(self, client: MongoClient[dict[str, Any]], name: str) -> list[Hit]:
        """Every document as BSON; twin states are decompressed first (they are zlib)."""
        hits: list[Hit] = []
        db = client[name]
        for collection in db.list_collection_names():
            for doc in db[collection].find():
                where = f"mongo {collection}/{doc['_id']}"
                hits += self.bytes(where, bson.encode(doc), "documents")
                for value in doc.values():
                    if isinstance(value, bytes) and value.startswith(STATE_MAGIC):
                        hits += self.bytes(
                            where + " state", zlib.decompress(value[len(STATE_MAGIC) + 32 :]), "documents"
                        )
        return hits

    def export(self, directory: Path) -> list[Hit]:
        """Every file's bytes, and each Avro file decoded (its blocks are deflate-compressed)."""
        hits: list[Hit] = []
        for path in sorted(directory.iterdir()):
            hits += self.bytes(f"{path.name} bytes", path.read_bytes(), "export files")
            if path.suffix == ".avro":
                with path.open("rb") as handle:
                    avro = reader(handle)
                    decoded = json.dumps([avro.metadata, avro.writer_schema, *avro], default=str)
                hits += self.bytes(f"{path.name} decoded", decoded.encode(), "export files")
        return hits


def _read(settings: Settings, topic: str) -> list[Any]:
    for attempt in range(5):
        try:
            return read_all(settings.kafka, topic)
        except KafkaException as exc:  # a new topic's leadership still settling
            if not exc.args[0].retriable() or attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


# ------------------------------------------------------------------ the run
def _vendor_files(identities: list[Identity], cohort: Any, root: Path) -> None:
    """The simulator's FHIR Bundles, Fitbit responses and Open mHealth points, with the
    identities and clinical notes an EHR export would carry."""
    write_fhir(cohort, root / "fhir")
    write_fitbit(cohort, root / "fitbit")
    write_omh(cohort, root / "omh")
    for who in identities:
        path = root / "fhir" / f"{who.patient.patient_id}.json"
        bundle = json.loads(path.read_text())
        patient = bundle["entry"][0]
        patient["resource"].update(
            name=[{"family": who.family, "given": [who.given], "text": f"{who.given} {who.family}"}],
            telecom=[{"system": "phone", "value": who.phone, "use": "mobile"}],
            address=[{"line": [who.address], "city": "Boston", "postalCode": "02139"}],
        )
        bundle["entry"].append(
            {
                "fullUrl": f"urn:uuid:condition-{who.patient.patient_id[2:14]}",
                "request": {"method": "POST", "url": "Condition"},
                "resource": {
                    "resourceType": "Condition",
                    "id": f"condition-{who.patient.patient_id[2:14]}",
                    "subject": {"reference": patient["fullUrl"]},
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "35489007"}]},
                    "onsetDateTime": f"{cohort.start_date.isoformat()}T10:00:00Z",
                    "note": [{"text": who.clinical_note}],
                    "text": {"status": "generated", "div": f"<div>{who.clinical_note}</div>"},
                },
            }
        )
        path.write_text(json.dumps(bundle))


def _env(settings: Settings, keys: Path) -> dict[str, str]:
    return {
        **worker_env(settings),
        "NOVAMIND_LOG_LEVEL": "DEBUG",
        "NOVAMIND_SECURITY__PSEUDONYM_KEY": SIM_KEY.decode(),
        "NOVAMIND_SECURITY__FIELD_KEYS_FILE": str(keys),
        "NOVAMIND_SECURITY__ACTIVE_FIELD_KEY_ID": "k1",
    }


def _novamind(env: dict[str, str], *argv: str) -> tuple[int, str]:
    done = subprocess.run(
        [NOVAMIND, *argv], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    return done.returncode, done.stdout + done.stderr


def _connect_fhir(env: dict[str, str], cohort: Any, root: Path) -> tuple[str, str]:
    """``novamind connect fhir`` on the Bundles, as a process; its output."""
    argv = ("fhir", str(root / "fhir"), "--source", "fhir:sim", "--as-of", cohort.start_date.isoformat())
    code, output = _novamind(env, "connect", *argv, "--no-progress")
    assert code == 0, f"connect fhir: {output[-2000:]}"
    return f"connect fhir {argv[1]}", output


def _connect_wearables(settings: Settings, identities: list[Identity], root: Path) -> list[tuple[str, str]]:
    """The Fitbit and Open mHealth jobs, one per patient; each one's result (as the command
    prints it), rejection notes and structlog events."""
    outputs = []
    for who in identities:
        p = who.patient
        ids = {"mrn": p.mrn, "mrn_system": p.mrn_system, "device_user": who.device_user}
        notes = io.StringIO()
        reporting = Reporting(notes, prefix=f"{p.vendor}: ", progress=False)
        with capture_logs() as events:
            result: JobResult
            if p.vendor == "fitbit":
                paths = [root / "fitbit" / p.patient_id]
                result = run_wearable(
                    WearableFormat.FITBIT, paths, settings, time_zone=p.time_zone, reporting=reporting, **ids
                )
            else:
                paths = [root / "omh" / f"{p.patient_id}.json"]
                result = run_wearable(WearableFormat.OPENMHEALTH, paths, settings, reporting=reporting, **ids)
        assert result.complete and result.produced > 0, result.as_dict()
        output = "\n".join([json.dumps(result.as_dict()), notes.getvalue(), json.dumps(events, default=str)])
        outputs.append((f"{p.vendor} job {paths[0]}", output))
    return outputs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Intake:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def post(self, token: str, patient: str, body: dict[str, Any]) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/patients/{patient}/symptom-reports",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)


@contextmanager
def _intake(env: dict[str, str], identities: list[Identity], tmp: Path) -> Iterator[Intake]:
    tokens = {f"token-{who.patient.patient_id}": who.patient.patient_id for who in identities}
    (tmp / "tokens.json").write_text(json.dumps({token_digest(t): p for t, p in tokens.items()}))
    port, log = _free_port(), tmp / "intake.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [NOVAMIND, "intake", "serve", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env={**env, "NOVAMIND_INTAKE__TOKENS_FILE": str(tmp / "tokens.json")},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=2).close()
            break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    try:
        yield Intake(port, process, log)
    finally:
        process.terminate()
        process.wait(timeout=60)


def _report(intake: Intake, identities: list[Identity], cohort: Any) -> int:
    """Every symptom report of the simulation through the intake; each patient's first one
    carries their note."""
    by_patient = {who.patient.patient_id: who for who in identities}
    noted: set[str] = set()
    sent = 0
    for delivery in cohort.deliveries:
        record = delivery["record"]
        if delivery["record_type"] != "SymptomReport" or delivery["defect"] is not None:
            continue
        who = by_patient[record["patient_id"]]
        body = {
            "submission_id": record["event_id"],
            "symptom_type": record["symptom_type"],
            "severity": record["severity"],
            "event_time": record["event_time"].isoformat(),
        }
        if record["context"]:
            body["context"] = record["context"]
        if who.patient.patient_id not in noted:
            body["notes"] = who.symptom_note
            noted.add(who.patient.patient_id)
        assert intake.post(f"token-{who.patient.patient_id}", who.patient.patient_id, body) == 201
        sent += 1
    assert noted == set(by_patient)
    return sent


def _planted_avro(directory: Path, text: str) -> None:
    directory.mkdir()
    row: dict[str, Any] = {f["name"]: None for f in training_schema()["fields"]}
    row.update(subject_id=text, date=dt.date(2026, 1, 1), age_band="UNKNOWN", sex="UNKNOWN")
    row.update(completeness=1.0, outlier_share=0.0, consistency=1.0)
    with (directory / "train.avro").open("wb") as handle:
        writer(handle, training_schema(), [row], codec="deflate")


# ------------------------------------------------------------------ the test
def test_no_identifier_or_free_text_in_the_clear(
    settings: Settings, run_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = isolated(settings, f"phi-{run_id}")
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DAYS + 2)
    cohort = simulate(PATIENTS, DAYS, 23, start)
    identities = _identities(cohort.patients)
    assert {p.vendor for p in cohort.patients} == {"fitbit", "apple_health"}
    keys = tmp_path / "field-keys.json"
    keys.write_text(json.dumps({"k1": base64.b64encode(os.urandom(32)).decode()}))
    env = _env(scenario, keys)
    security = SecuritySettings(
        pseudonym_key=SecretStr(SIM_KEY.decode()), field_keys_file=keys, active_field_key_id="k1"
    )
    secured = scenario.model_copy(update={"security": security})  # what env gives a process
    for name in ("NOVAMIND_LOG_LEVEL", "NOVAMIND_LOG_FORMAT"):  # the harness's workers inherit these
        monkeypatch.setenv(name, env[name])
    _vendor_files(identities, cohort, tmp_path / "vendor")

    logs: list[tuple[str, str]] = []
    worker_logs = tmp_path / "workers"
    with workers(scenario, worker_logs) as running:
        logs.append(_connect_fhir(env, cohort, tmp_path / "vendor"))
        jobs = _connect_wearables(secured, identities, tmp_path / "vendor")
        with _intake(env, identities, tmp_path) as intake:
            reports = _report(intake, identities, cohort)
        logs.append(("intake", intake.log.read_text()))
        wait_caught_up(scenario, running)
    logs += [(path.name, path.read_text(errors="replace")) for path in sorted(worker_logs.glob("*.log"))]
    assert reports > 0

    export = tmp_path / "export"  # failing days are dropped, not exported
    code, output = _novamind(
        env, "dataset", "export", "-o", str(export), "--actor", "phi-scan", "--min-passing-share", "0",
        "--train-share", "0.5", "--validation-share", "0.25", "--gap-days", "1",
    )  # fmt: skip
    assert code == 0, output
    logs.append(("dataset export", output))

    needles = {
        f"{label} of {who.patient.mrn}": text for who in identities for label, text in who.needles().items()
    }
    scanner = Scanner(needles)
    topic_hits, counts = scanner.topics(scenario)
    mongo: MongoClient[dict[str, Any]] = MongoClient(scenario.mongo.uri.get_secret_value())
    hits = [
        *topic_hits,
        *(hit for name, text in [*logs, *jobs] for hit in scanner.lines(name, text)),
        *scanner.database(mongo, scenario.mongo.database),
        *scanner.export(export),
    ]
    assert hits == []

    # The scan covered real traffic: every stage wrote, and every kind of place was read.
    for topic in (*SOURCES, "patient-daily-features", "twin-inputs", "twin-updates", "audit-events"):
        assert counts[topic] > 0, counts
    assert all('"event"' in text for _, text in logs), [name for name, text in logs if '"event"' not in text]
    assert scanner.scanned["log lines"] > 50 and scanner.scanned["documents"] > PATIENTS
    assert scanner.scanned["export files"] >= 7  # 3 Avro files twice, the manifest
    assert sum(len(list(reader(p.open("rb")))) for p in export.glob("*.avro")) > 0
    # The export also drops the pipeline's pseudonyms.
    pseudonyms = Scanner({f"pseudonym {p.mrn}": p.patient_id for p in cohort.patients})
    assert pseudonyms.export(export) == []
    assert pseudonyms.topics(scenario)[0]  # ...which are everywhere else, as keys

    # The scanner finds what is planted in each kind of place.
    who = identities[0]
    canary = scenario.kafka.topic("zz-canary")
    admin = AdminClient(admin_config(scenario.kafka))
    admin.create_topics([NewTopic(canary, num_partitions=1, replication_factor=1)])[canary].result(timeout=30)
    producer = EventProducer(kafka=scenario.kafka, client_id="phi-scan-canary")
    producer.send(canary, key=who.patient.mrn.encode(), value=f"notes={who.symptom_note}".encode())
    assert producer.flush(30) == 0
    planted = {where.split("[")[0] for where, _ in scanner.topics(scenario)[0]}
    assert planted == {canary}
    assert _labels(
        scanner.lines("planted", '{"event": "x", "patient_name": "' + who.family.upper() + '"}')
    ) == {f"family name of {who.patient.mrn}"}
    mongo[scenario.mongo.database]["planted"].insert_one(
        {"_id": 1, "birth": who.patient.birth_date.isoformat()}
    )
    assert _labels(scanner.database(mongo, scenario.mongo.database)) == {f"birth date of {who.patient.mrn}"}
    _planted_avro(tmp_path / "planted", who.address)
    assert f"address of {who.patient.mrn}" in _labels(scanner.export(tmp_path / "planted"))


def _labels(hits: Iterable[Hit]) -> set[str]:
    return {label for _, label in hits}
