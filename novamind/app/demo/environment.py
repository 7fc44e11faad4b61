"""This run's isolated environment: settings, subprocess environment, secrets and topics.

Each run gets its own topic prefix, database and output folder, so running it twice is safe.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import time
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from pydantic import SecretStr

from connectors.intake import token_digest
from connectors.simulator.cohort import SIM_KEY
from novamind.app.demo.exceptions import DemoError
from novamind.platform.kafka import consumer_config
from novamind.platform.settings import Settings
from novamind.platform.topicadmin import cluster_topics, ensure_subjects, ensure_topics

FIELD_KEY_ID = "demo"


@dataclass(frozen=True)
class Environment:
    """Settings of the demo process, the environment of its subprocesses, patients' app tokens."""

    settings: Settings
    env: dict[str, str]
    tokens: dict[str, str]  # pseudonym -> bearer token of the patient's app


def configure(
    base: Settings, run: str, out: Path, patients: list[Any], *, replay_days: int = 0
) -> Environment:
    """Prefix ``demo-<run>.``, database ``novamind_demo_<run>``, and made-up secrets.

    The demo replays ``replay_days`` of history through the intake as fast as it can, so its
    intake takes event times that old (``NOVAMIND_INTAKE__HORIZON_DAYS``) and has no per-token
    rate limit; the workers keep their own lateness.

    The simulator's pseudonym key is used so that the FHIR connector derives the simulator's
    pseudonyms from its MRNs (synthetic people only). The patients' app tokens and the field
    key for notes are made up for this run and kept in ``<out>/secrets/`` (mode 600).
    """
    folder = out / "secrets"
    folder.mkdir(parents=True, mode=0o700)
    keys, tokens_file = folder / "field-keys.json", folder / "intake-tokens.json"
    keys.write_text(json.dumps({FIELD_KEY_ID: base64.b64encode(os.urandom(32)).decode()}))
    tokens = {p.patient_id: secrets.token_urlsafe(24) for p in patients}
    tokens_file.write_text(json.dumps({token_digest(t): p for p, t in tokens.items()}))
    (folder / "patient-app-tokens.json").write_text(json.dumps(tokens))
    for path in folder.iterdir():
        path.chmod(0o600)

    kafka = base.kafka.model_copy(update={"topic_prefix": f"demo-{run}."})
    mongo = base.mongo.model_copy(update={"database": f"novamind_demo_{run}"})
    security = base.security.model_copy(
        update={
            "pseudonym_key": SecretStr(SIM_KEY.decode()),
            "field_keys_file": keys,
            "active_field_key_id": FIELD_KEY_ID,
        }
    )
    settings = base.model_copy(
        update={"kafka": kafka, "mongo": mongo, "security": security, "log_level": "WARNING"}
    )
    env = {
        **os.environ,
        "NOVAMIND_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "NOVAMIND_KAFKA__PARTITIONS": str(kafka.partitions),
        "NOVAMIND_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
        "NOVAMIND_KAFKA__SCHEMA_REGISTRY_URL": kafka.schema_registry_url or "",
        "NOVAMIND_MONGO__URI": mongo.uri.get_secret_value(),
        "NOVAMIND_MONGO__DATABASE": mongo.database,
        "NOVAMIND_LOG_FORMAT": "json",
        "NOVAMIND_LOG_LEVEL": "INFO",
        "NOVAMIND_SECURITY__PSEUDONYM_KEY": SIM_KEY.decode(),
        "NOVAMIND_SECURITY__FIELD_KEYS_FILE": str(keys),
        "NOVAMIND_SECURITY__ACTIVE_FIELD_KEY_ID": FIELD_KEY_ID,
        "NOVAMIND_INTAKE__TOKENS_FILE": str(tokens_file),
        "NOVAMIND_INTAKE__RATE_LIMIT_PER_MINUTE": "0",
    }
    if replay_days + 2 > base.worker.lateness_days:
        env["NOVAMIND_INTAKE__HORIZON_DAYS"] = str(replay_days + 2)
    return Environment(settings, env, tokens)


def create_topics(settings: Settings) -> int:
    """Create the run's topics and wait until every partition has a leader; how many."""
    printed = io.StringIO()
    with redirect_stdout(printed):
        failed = ensure_topics(settings.kafka) or ensure_subjects(settings.kafka)
    if failed:
        raise DemoError(f"the topics or registry subjects could not be created:\n{printed.getvalue()}")
    _wait_for_leaders(settings)
    return sum(1 for line in printed.getvalue().splitlines() if line.startswith("created"))


def _wait_for_leaders(settings: Settings, timeout_s: float = 60.0) -> None:
    """Until every partition of the new topics answers an offset request: a replica that
    restores its state from a partition whose leadership is still settling fails to start."""
    consumer = Consumer(consumer_config(settings.kafka, group_id="demo-leader-probe", client_id="demo"))
    deadline = time.monotonic() + timeout_s
    try:
        pending = [
            TopicPartition(t.name, p) for t in cluster_topics(settings.kafka) for p in range(t.partitions)
        ]
        while pending:
            try:
                consumer.get_watermark_offsets(pending[0], timeout=5)
                pending.pop(0)
            except KafkaException as exc:
                if time.monotonic() > deadline:
                    raise DemoError(f"partition {pending[0].topic}[{pending[0].partition}]: {exc}") from exc
                time.sleep(0.2)
    finally:
        consumer.close()
