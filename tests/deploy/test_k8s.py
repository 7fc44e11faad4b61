"""Kubernetes manifests agree with the product: probes and ports, the consumer group and topics
KEDA watches, the replica bound set by the partition count, secrets kept out of the repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from novamind.app.status import WORKERS_GROUP, worker_source_topics
from schemas.topics import Principal, co_partitioning_problems, declared_topics

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
WORKER_LABELS = {"app.kubernetes.io/name": "novamind", "app.kubernetes.io/component": "worker"}


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def one(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def config() -> dict[str, str]:
    return one("ConfigMap", "novamind-config")["data"]


def container(deployment: str) -> dict[str, Any]:
    (c,) = one("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return c


def port_of(c: dict[str, Any], name_or_number: str | int) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    (port,) = [p["containerPort"] for p in c["ports"] if p["name"] == name_or_number]
    return port


def scaled_object() -> dict[str, Any]:
    return one("ScaledObject", "novamind-worker")


def test_every_manifest_parses_and_kustomize_applies_all_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    applied = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert applied == on_disk - {"secret.example.yaml"}
    for doc in manifests():
        if doc["kind"] in {"Kustomization", "Namespace"}:
            continue
        assert doc["metadata"]["namespace"] == "novamind", doc["metadata"]["name"]


def test_no_real_secret_is_in_the_repository() -> None:
    secrets = [d for d in manifests() if d["kind"] == "Secret"]
    assert [s["metadata"]["name"] for s in secrets] == ["novamind-secrets"]
    for value in secrets[0]["stringData"].values():
        assert "REPLACE" in value
    for doc in manifests():
        assert "data" not in doc or doc["kind"] == "ConfigMap"
        for key in (doc.get("data") or {}) if doc["kind"] == "ConfigMap" else ():
            assert not re.search(r"PASSWORD|SECRET|TOKEN$|_KEY$|URI$", key), f"{key} belongs in the Secret"


def test_worker_probes_use_the_worker_web_port_and_paths() -> None:
    worker = container("novamind-worker")
    assert worker["args"][0] == "worker"
    web_port = int(config()["NOVAMIND_WORKER__WEB_PORT"])
    assert config()["NOVAMIND_WORKER__WEB_HOST"] == "0.0.0.0"  # the kubelet probes from outside the pod
    assert port_of(worker, "web") == web_port == 6066
    live, ready = worker["livenessProbe"]["httpGet"], worker["readinessProbe"]["httpGet"]
    assert (live["path"], port_of(worker, live["port"])) == ("/healthz", web_port)
    assert (ready["path"], port_of(worker, ready["port"])) == ("/readyz", web_port)
    annotations = one("Deployment", "novamind-worker")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == web_port


def test_compose_and_kubernetes_run_the_worker_on_the_same_port() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker"]
    command = compose["command"]
    if "--web-port" in command:
        assert int(command[command.index("--web-port") + 1]) == int(config()["NOVAMIND_WORKER__WEB_PORT"])
    assert str(int(config()["NOVAMIND_WORKER__WEB_PORT"])) in {str(p) for p in compose.get("expose", [])}


def test_worker_shuts_down_gracefully_and_rolls_old_first() -> None:
    deployment = one("Deployment", "novamind-worker")
    spec = deployment["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] >= 60
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    # A surge replica finds no free partition when replicas equal partitions, and never gets ready.
    assert rolling["maxSurge"] == 0 and rolling["maxUnavailable"] == 1
    assert deployment["spec"]["selector"]["matchLabels"] == WORKER_LABELS
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert WORKER_LABELS.items() <= labels.items()
    worker = container("novamind-worker")
    assert worker["resources"]["requests"] and worker["resources"]["limits"]["memory"]


def test_the_disruption_budget_covers_the_workers() -> None:
    pdb = one("PodDisruptionBudget", "novamind-worker")
    assert pdb["spec"]["selector"]["matchLabels"] == WORKER_LABELS
    assert pdb["spec"]["maxUnavailable"] == 1


def test_keda_watches_the_workers_group_on_every_source_topic() -> None:
    scaled = scaled_object()
    assert scaled["spec"]["scaleTargetRef"]["name"] == "novamind-worker"
    prefix = config()["NOVAMIND_KAFKA__TOPIC_PREFIX"]
    read_by_workers = {f"{prefix}{t.name}" for t in declared_topics() if Principal.WORKERS in t.readers}
    triggers = scaled["spec"]["triggers"]
    assert triggers and all(t["type"] == "kafka" for t in triggers)
    for trigger in triggers:
        meta = trigger["metadata"]
        assert meta["consumerGroup"] == f"{prefix}{WORKERS_GROUP}"
        assert meta["bootstrapServers"] == config()["NOVAMIND_KAFKA__BOOTSTRAP_SERVERS"]
        assert meta["topic"] in read_by_workers, f"{meta['topic']} is not a topic the workers read"
        assert int(meta["lagThreshold"]) > 0
        assert meta["allowIdleConsumers"] == "false"
    watched = {t["metadata"]["topic"] for t in triggers}
    assert {f"{prefix}{name}" for name in worker_source_topics()} <= watched


def test_replicas_are_bounded_by_the_partition_count() -> None:
    partitions = int(config()["NOVAMIND_KAFKA__PARTITIONS"])
    spec = scaled_object()["spec"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions
    # The bound holds for every topic KEDA watches: all patient topics share the count.
    topics = declared_topics(partitions=partitions)
    assert co_partitioning_problems(topics) == []
    watched = {
        t["metadata"]["topic"].removeprefix(config()["NOVAMIND_KAFKA__TOPIC_PREFIX"])
        for t in spec["triggers"]
    }
    assert {t.partitions for t in topics if t.name in watched} == {partitions}
    assert one("Deployment", "novamind-worker")["spec"]["replicas"] <= spec["maxReplicaCount"]


def test_intake_service_reaches_the_intake_port_and_probes_health() -> None:
    intake = container("novamind-intake")
    assert intake["args"][:2] == ["intake", "serve"]
    port = port_of(intake, "http")
    assert port == int(config()["NOVAMIND_INTAKE__PORT"])
    assert config()["NOVAMIND_INTAKE__HOST"] == "0.0.0.0"
    for probe in ("livenessProbe", "readinessProbe"):
        get = intake[probe]["httpGet"]
        assert (get["path"], port_of(intake, get["port"])) == ("/healthz", port)
    service = one("Service", "novamind-intake")
    deployment = one("Deployment", "novamind-intake")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (service_port,) = service["spec"]["ports"]
    assert port_of(intake, service_port["targetPort"]) == port
    assert intake["lifecycle"]["preStop"]
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30


def test_secret_files_are_where_the_settings_look() -> None:
    mounts = {m["name"]: m["mountPath"] for m in container("novamind-worker")["volumeMounts"]}
    secret_dir = mounts["secrets"]
    example = one("Secret", "novamind-secrets")["stringData"]
    for key in (
        "NOVAMIND_SECURITY__PSEUDONYM_KEY_FILE",
        "NOVAMIND_SECURITY__FIELD_KEYS_FILE",
        "NOVAMIND_INTAKE__TOKENS_FILE",
    ):
        path = Path(config()[key])
        assert str(path.parent) == secret_dir and path.name in example, key
    for c in (container("novamind-worker"), container("novamind-intake")):
        refs = {
            e["valueFrom"]["secretKeyRef"]["key"]
            for e in c["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert "mongodb-uri" in refs and refs <= set(example) | {"kafka-sasl-password"}


def test_compose_worker_scales_and_stops_gracefully() -> None:
    worker = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker"]
    assert "container_name" not in worker and not worker.get("ports")  # `--scale worker=N` works
    grace = re.fullmatch(r"(\d+)s", worker["stop_grace_period"])
    assert grace and int(grace.group(1)) >= 30


KUSTOMIZE = shutil.which(os.environ.get("KUSTOMIZE", "kustomize"))


@pytest.mark.skipif(KUSTOMIZE is None, reason="kustomize is not installed (or KUSTOMIZE unset)")
def test_kustomize_renders_every_applied_resource() -> None:
    result = subprocess.run(
        [str(KUSTOMIZE), "build", str(K8S)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    rendered = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(result.stdout) if d}
    expected = {
        (d["kind"], d["metadata"]["name"])
        for d in manifests()
        if d["kind"] not in {"Kustomization", "Secret"}
    }
    assert rendered == expected
