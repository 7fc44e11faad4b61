"""docs/consumers.md, run: a worker's twin updates and alerts read by the guide's examples,
which use no NOVAMIND code, against the real broker and the real schema registry.

The plain confluent-kafka example runs in this environment (confluent-kafka's AvroDeserializer
and SchemaRegistryClient); the Quix Streams example runs in an environment of its own made
from docs/examples/requirements-quixstreams.txt (Quix Streams pins an older confluent-kafka).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from novamind.platform.producer import EventProducer
from novamind.platform.settings import Settings
from novamind.platform.topicadmin import ensure_subjects
from schemas.codec import AvroCodec
from tests.integration.harness import ROOT, WorkerProcess, isolated, read_topic, reader_codec
from tests.integration.test_foundation import PATIENT, _phq9

EXAMPLES = ROOT / "docs" / "examples"
STDLIB = {"__future__", "argparse", "json", "sys", "time"}


@pytest.fixture(scope="module")
def published(settings: Settings, run_id: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A worker has turned one PHQ-9 result (item 9 positive) into a twin update and an alert;
    the worker is stopped before the examples read, so the topics hold all there will be."""
    scenario = isolated(settings, f"guide-{run_id}")
    assert ensure_subjects(scenario.kafka) == 0
    topic = scenario.kafka.topic("patient-reports")
    value = AvroCodec.from_settings(scenario.kafka).encode(_phq9([2, 2, 1, 1, 1, 1, 1, 1, 1]), topic=topic)
    producer = EventProducer(kafka=scenario.kafka, client_id="guide-test")
    producer.send(topic, key=PATIENT.encode(), value=value)
    assert producer.flush(30) == 0
    worker = WorkerProcess(scenario, tmp_path_factory.mktemp("guide"), "guide")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
            read_topic(scenario, "twin-updates") and read_topic(scenario, "twin-alerts")
        ):
            assert worker.alive(), worker.log()[-3000:]
            time.sleep(0.5)
    finally:
        worker.stop()
    return scenario


def _expected(scenario: Settings, name: str) -> list[dict[str, Any]]:
    codec = reader_codec(scenario)
    return [codec.decode_dict(m.value())[1] for m in read_topic(scenario, name)]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_examples_use_no_project_code() -> None:
    assert _imports(EXAMPLES / "consume_twin_updates.py") <= STDLIB | {"confluent_kafka"}
    assert _imports(EXAMPLES / "quix_twin_alerts.py") <= STDLIB | {"quixstreams"}


def test_plain_confluent_kafka_reads_a_workers_twin_update_and_alerts(
    published: Settings, tmp_path: Path
) -> None:
    updates, alerts = _expected(published, "twin-updates"), _expected(published, "twin-alerts")
    assert updates and alerts
    kafka = published.kafka
    done = subprocess.run(
        [
            sys.executable,
            "-I",  # no PYTHONPATH, no current folder: only installed packages
            str(EXAMPLES / "consume_twin_updates.py"),
            "--bootstrap", kafka.bootstrap_servers,
            "--registry", kafka.schema_registry_url or "",
            "--group", f"{kafka.topic_prefix}dashboard",
            "--max-messages", str(len(updates) + len(alerts)),
            "--timeout", "90",
            kafka.topic("twin-updates"),
            kafka.topic("twin-alerts"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    by_topic = {
        name: [x for x in lines if x["topic"] == kafka.topic(name)]
        for name in ("twin-updates", "twin-alerts")
    }
    assert len(by_topic["twin-updates"]) == len(updates) and len(by_topic["twin-alerts"]) == len(alerts)
    for line in lines:
        assert line["key"] == PATIENT == line["value"]["patient_id"]
    got = {x["value"]["event_id"]: x["value"] for x in by_topic["twin-updates"]}
    for update in updates:
        reread = got[update["event_id"]]
        assert reread["twin_version"] == update["twin_version"]
        assert reread["phq9_band"] == update["phq9_band"]
    assert {x["value"]["alert_type"] for x in by_topic["twin-alerts"]} == {a["alert_type"] for a in alerts}


@pytest.fixture(scope="session")
def quix_python() -> Path:
    """Python of an environment with the Quix Streams example's requirements (kept under .local)."""
    requirements = EXAMPLES / "requirements-quixstreams.txt"
    venv = ROOT / ".local" / "venvs" / "quixstreams"
    stamp = venv / ".installed"
    if not stamp.exists() or stamp.read_text() != requirements.read_text():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
            + ["-r", str(requirements)],
            check=True,
            timeout=900,
        )
        stamp.write_text(requirements.read_text())
    return venv / "bin" / "python"


def test_quix_streams_follows_the_alerts(published: Settings, quix_python: Path, tmp_path: Path) -> None:
    alerts = _expected(published, "twin-alerts")
    severe = [a for a in alerts if a["severity"] == "CRITICAL"]
    assert severe
    kafka = published.kafka
    done = subprocess.run(
        [
            str(quix_python),
            "-I",
            str(EXAMPLES / "quix_twin_alerts.py"),
            "--bootstrap", kafka.bootstrap_servers,
            "--registry", kafka.schema_registry_url or "",
            "--group", f"{kafka.topic_prefix}alert-pager",
            "--severity", "CRITICAL",
            "--max-messages", str(len(severe)),
            "--timeout", "60",
            kafka.topic("twin-alerts"),
        ],
        cwd=tmp_path,  # Quix Streams keeps its state folder here
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert sorted(x["event_id"] for x in lines) == sorted(a["event_id"] for a in severe)
    assert all(x["patient_id"] == PATIENT for x in lines)
