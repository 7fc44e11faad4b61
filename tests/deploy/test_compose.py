"""docker-compose.yml serves Docker hosts: it must parse and name the right services and images."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_uses_the_official_kafka_and_mongodb_images() -> None:
    services = _compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["mongo"]["image"].startswith("mongo:")
    kraft = services["kafka"]["environment"]
    assert kraft["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_compose_runs_the_schema_registry_the_local_services_run() -> None:
    from novamind.app.localservices import REGISTRY_VERSION

    services = _compose()["services"]
    assert services["registry"]["image"] == f"apicurio/apicurio-registry:{REGISTRY_VERSION}"
    url = services["worker"]["environment"]["NOVAMIND_KAFKA__SCHEMA_REGISTRY_URL"]
    assert url == "http://registry:8080/apis/ccompat/v7"
    for name in ("topics", "worker", "intake"):
        assert services[name]["depends_on"]["registry"]["condition"] == "service_healthy"


def test_worker_can_be_scaled() -> None:
    worker = _compose()["services"]["worker"]
    # A fixed container name or host port would make `--scale worker=3` fail.
    assert "container_name" not in worker
    assert all(":" not in str(port) for port in worker.get("ports", []))
    assert worker["command"][0] == "worker"
    assert worker["environment"]["NOVAMIND_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_connectors_and_intake_run_the_product_cli() -> None:
    services = _compose()["services"]
    assert {"topics", "worker", "intake", "connector-ehr", "connector-wearables"} <= set(services)
    for name in ("topics", "worker", "intake", "connector-ehr", "connector-wearables"):
        assert services[name]["build"]["dockerfile"] == "deploy/container/Dockerfile"
        assert (ROOT / services[name]["build"]["dockerfile"]).exists()
    for name in ("worker", "intake"):
        depends = services[name]["depends_on"]
        assert depends["kafka"]["condition"] == depends["mongo"]["condition"] == "service_healthy"


def test_compose_secret_files_exist() -> None:
    for secret in _compose()["secrets"].values():
        assert (ROOT / secret["file"]).exists()


def test_every_service_command_parses_with_the_product_cli() -> None:
    from novamind.app.cli import build_parser

    parser = build_parser()
    for name, service in _compose()["services"].items():
        if "build" in service:  # product image: its command is a ``novamind`` command line
            args = parser.parse_args([str(a).replace("${IMPORT_MRN:-}", "123") for a in service["command"]])
            assert callable(args.handler), name
