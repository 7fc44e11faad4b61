"""Session fixtures: real services for integration tests, small factories for the rest."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from novamind.platform.settings import KafkaSettings, MongoSettings, Settings
from tests.services import ServiceAddresses, real_services

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def services() -> Iterator[ServiceAddresses]:
    with real_services() as addresses:
        yield addresses


@pytest.fixture(scope="session")
def run_id() -> str:
    """A short id that keeps this session's topics, groups and databases apart."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def settings(services: ServiceAddresses, run_id: str) -> Settings:
    from pydantic import SecretStr

    return Settings(
        environment="test",
        kafka=KafkaSettings(
            bootstrap_servers=services.kafka_bootstrap,
            partitions=4,
            schema_registry_url=services.registry_url,  # the local services configure one
        ),
        mongo=MongoSettings(uri=SecretStr(services.mongodb_uri), database=f"novamind_test_{run_id}"),
    )
