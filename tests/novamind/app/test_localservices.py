"""Clear errors, not stack traces, when a local service cannot start."""

from __future__ import annotations

import os
import socket
import uuid
from base64 import urlsafe_b64encode
from pathlib import Path

import pytest

from novamind.app import localservices
from novamind.app.exceptions import ServiceError
from novamind.app.localservices import LocalServices, new_cluster_id
from novamind.platform.settings import LocalServicesSettings


def _fake_tool(folder: Path, name: str, script: str) -> None:
    tool = folder / name
    tool.write_text(f"#!/bin/sh\n{script}\n")
    tool.chmod(0o755)


@pytest.fixture
def services_factory(tmp_path: Path):
    def make(**overrides: object) -> LocalServices:
        settings = LocalServicesSettings(home=tmp_path / "home", start_timeout_s=5, **overrides)
        return LocalServices(settings=settings)

    return make


def _prepared(services: LocalServices) -> LocalServices:
    services.kafka_libs.mkdir(parents=True)
    (services.kafka_libs / "kafka_2.13-4.1.2.jar").write_bytes(b"")
    services.ferretdb_bin.parent.mkdir(parents=True)
    services.ferretdb_bin.write_bytes(b"")
    return services


def test_missing_java_is_explained(services_factory, tmp_path, monkeypatch) -> None:
    services = _prepared(services_factory(kafka_port=1, kafka_controller_port=2))
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    with pytest.raises(ServiceError, match=r"Java 17\+ is needed .*apt-get install openjdk-17"):
        services.up()


def test_taken_port_names_the_port_and_the_setting(services_factory) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        services = _prepared(services_factory(kafka_port=port))
        with pytest.raises(
            ServiceError, match=rf"port {port} for Kafka is taken .*NOVAMIND_LOCAL__KAFKA_PORT"
        ):
            services.up()


def test_maven_download_failure_is_explained(services_factory, tmp_path, monkeypatch) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    _fake_tool(fake_bin, "mvn", "echo 'Could not transfer artifact org.apache.kafka:kafka_2.13' >&2; exit 1")
    monkeypatch.setenv("PATH", str(fake_bin))
    with pytest.raises(ServiceError) as error:
        services_factory().up()
    message = str(error.value)
    assert "fetching the Kafka jars from Maven Central failed" in message
    assert "Could not transfer artifact" in message
    assert "Traceback" not in message


def test_go_build_failure_is_explained(services_factory, tmp_path, monkeypatch) -> None:
    services = services_factory()
    services.kafka_libs.mkdir(parents=True)
    (services.kafka_libs / "kafka_2.13-4.1.2.jar").write_bytes(b"")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    _fake_tool(fake_bin, "go", "echo 'proxy.golang.org: dial tcp: i/o timeout' >&2; exit 1")
    monkeypatch.setenv("PATH", str(fake_bin))
    with pytest.raises(
        ServiceError, match=r"building FerretDB v1.24.2 .* failed \(check that the Go module proxy"
    ):
        services.up()


def test_cli_prints_one_line_not_a_traceback(tmp_path, monkeypatch, capsys) -> None:
    from novamind.app.cli import main

    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    monkeypatch.setenv("NOVAMIND_LOCAL__HOME", str(tmp_path / "home"))
    assert main(["services", "up"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("novamind services: Maven (mvn) is needed")
    assert "Traceback" not in err


def test_cluster_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage tool reads an id starting with "-" as an option; such ids are drawn again."""
    drawn = iter([uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(bytes=b"\x10" * 16)])
    monkeypatch.setattr(localservices.uuid, "uuid4", lambda: next(drawn))
    assert urlsafe_b64encode(b"\xf8" + b"\x00" * 15).startswith(b"-")
    assert new_cluster_id() == urlsafe_b64encode(b"\x10" * 16).decode().rstrip("=")


def test_the_registry_is_reported_with_its_api_address(services_factory) -> None:
    services = services_factory(registry_port=1)
    (registry,) = [s for s in services.status() if s.name == "registry"]
    assert registry.address == "http://127.0.0.1:1/apis/ccompat/v7"
    assert not registry.answering and registry.pid is None


def test_registry_download_failure_is_explained(services_factory, tmp_path, monkeypatch) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    _fake_tool(fake_bin, "mvn", "echo 'Could not find artifact io.apicurio:registry-app' >&2; exit 1")
    monkeypatch.setenv("PATH", str(fake_bin))
    with pytest.raises(ServiceError) as error:
        services_factory().up(only=("registry",))
    message = str(error.value)
    assert "fetching Apicurio Registry 3.0.9 from Maven Central failed" in message
    assert "Could not find artifact" in message


def test_a_registry_archive_with_another_sha1_is_refused(tmp_path) -> None:
    archive = tmp_path / "apicurio-registry-app-3.0.9-all.tar.gz"
    archive.write_bytes(b"not the archive")
    with pytest.raises(ServiceError, match=r"has sha1 [0-9a-f]{40}, expected 4deac017"):
        localservices.unpack_registry(archive, tmp_path / "3.0.9")
    assert not (tmp_path / "3.0.9").exists()


def test_unknown_service_names_list_the_known_ones(services_factory) -> None:
    with pytest.raises(ServiceError, match="expected one of kafka, ferretdb, registry"):
        services_factory().stop("zookeeper")


class _Sleeper(localservices.ManagedServer):
    """A stand-in server: a shell command that answers when ``answers`` says so."""

    server_name = "the sleeper"

    def __init__(self, home: Path, script: str, *, answers: bool, timeout_s: float = 5.0) -> None:
        super().__init__()
        self.home, self.script, self.answering, self.timeout_s = home, script, answers, timeout_s
        self.log = home / "sleeper.log"

    def start(self) -> None:
        self._launch(
            ["sh", "-c", self.script],
            output=self.log,
            cwd=self.home,
            log=self.log,
            answers=lambda: self.answering,
            timeout_s=self.timeout_s,
        )

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None


def test_a_managed_server_runs_in_its_own_session_until_its_block_ends(tmp_path) -> None:
    with _Sleeper(tmp_path, "sleep 60", answers=True) as server:
        assert server.alive()
        process = server._process
        assert process is not None and os.getpgid(process.pid) == process.pid  # its own group
    assert process.poll() is not None and not server.alive()
    server.stop()  # stopping again is harmless


def test_a_managed_server_that_exits_during_start_up_is_explained(tmp_path) -> None:
    exited = r"the sleeper exited during start-up \(.*sleeper.log\):\nno config"
    with pytest.raises(ServiceError, match=exited):
        _Sleeper(tmp_path, "echo no config >&2; exit 3", answers=False).start()


def test_a_managed_server_that_does_not_answer_is_stopped_and_explained(tmp_path) -> None:
    server = _Sleeper(tmp_path, "echo starting; sleep 60", answers=False, timeout_s=1)
    with pytest.raises(ServiceError, match=r"the sleeper did not answer within 1s \(.*\):\nstarting"):
        server.start()
    assert not server.alive() and server._process is None
