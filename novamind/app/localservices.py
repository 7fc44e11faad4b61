"""The Docker-free development services: an Apache Kafka KRaft broker, FerretDB and a schema registry.

Kafka's jars come from Maven Central (deploy/local/kafka/pom.xml), FerretDB is built from the
Go module proxy (deploy/local/ferretdb), and Apicurio Registry's runnable build is fetched from
Maven Central (its sha1 checked). All live under ``settings.local.home`` (git-ignored), keep their
data across restarts, and log to files. ``up`` is idempotent: it starts only what is not running
and waits until each service answers a real request.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from base64 import urlsafe_b64encode
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from types import TracebackType
from typing import Any, ClassVar, Self

from confluent_kafka.admin import AdminClient
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from novamind.app.exceptions import ServiceError
from novamind.platform.settings import PROJECT_ROOT, LocalServicesSettings, local_registry_url

DEPLOY_LOCAL = PROJECT_ROOT / "deploy" / "local"
SERVICES = ("kafka", "ferretdb", "registry")

# Apicurio Registry's runnable build (Quarkus fast-jar in a tar.gz) on Maven Central. The newest
# maven-dependency-plugin fails on the artifact's parent POM; 2.8 without transitive resolution
# fetches the file alone. The sha1 is pinned here, not only taken from the repository.
REGISTRY_VERSION = "3.0.9"
REGISTRY_ARTIFACT = f"io.apicurio:apicurio-registry-app:{REGISTRY_VERSION}:tar.gz:all"
REGISTRY_SHA1 = "4deac01752711c32da5662e7b778b61c5e904746"
REGISTRY_JAR = f"apicurio-registry-app-{REGISTRY_VERSION}-runner.jar"


@dataclass(frozen=True, kw_only=True)
class ServiceStatus:
    name: str
    address: str
    pid: int | None
    answering: bool
    log_file: Path


class LocalServices:
    """Start, stop and report the local Kafka broker, FerretDB and schema registry."""

    def __init__(self, *, settings: LocalServicesSettings) -> None:
        self.settings = settings
        self.home = settings.home
        self.run_dir = self.home / "run"
        self.log_dir = self.home / "logs"
        self.kafka_libs = self.home / "kafka" / "libs"
        self.kafka_data = self.home / "data" / "kafka"
        self.mongo_data = self.home / "data" / "ferretdb"
        self.ferretdb_bin = self.home / "bin" / "ferretdb"
        self.registry_dir = self.home / "apicurio" / REGISTRY_VERSION
        self.registry_data = self.home / "data" / "registry"
        self.registry_url = local_registry_url(settings)

    # -- public -------------------------------------------------------------------------------

    def up(self, only: tuple[str, ...] = SERVICES) -> list[ServiceStatus]:
        """Prepare and start the services named in ``only`` (default all) that are not running."""
        wanted = [self._known(name) for name in only]
        folders = (self.run_dir, self.log_dir, self.kafka_data, self.mongo_data, self.registry_data)
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        if "kafka" in wanted:
            self._ensure_kafka_jars()
        if "ferretdb" in wanted:
            self._ensure_ferretdb()
        if "kafka" in wanted:
            self._start_kafka()
        if "ferretdb" in wanted:
            self._start_ferretdb()
        if "registry" in wanted:
            self._ensure_registry()
            self._start_registry()
        return [status for status in self.status() if status.name in wanted]

    def down(self) -> None:
        for name in SERVICES:
            self._stop(name)

    def stop(self, name: str) -> None:
        """Stop one service ("kafka", "ferretdb" or "registry"); its data stays."""
        self._stop(self._known(name))

    def start(self, name: str) -> None:
        """Start one service again (it must have been set up by :meth:`up`)."""
        starts = {"kafka": self._start_kafka, "ferretdb": self._start_ferretdb}
        starts["registry"] = self._start_registry
        starts[self._known(name)]()

    @staticmethod
    def _known(name: str) -> str:
        if name not in SERVICES:
            raise ServiceError(f"unknown service {name!r}; expected one of {', '.join(SERVICES)}")
        return name

    def status(self) -> list[ServiceStatus]:
        kafka = f"127.0.0.1:{self.settings.kafka_port}"
        mongo = f"127.0.0.1:{self.settings.mongo_port}"
        return [
            ServiceStatus(
                name="kafka",
                address=kafka,
                pid=self._pid("kafka"),
                answering=kafka_answers(kafka),
                log_file=self.log_dir / "kafka" / "server.log",
            ),
            ServiceStatus(
                name="ferretdb",
                address=mongo,
                pid=self._pid("ferretdb"),
                answering=mongo_answers(f"mongodb://{mongo}/"),
                log_file=self.log_dir / "ferretdb.log",
            ),
            ServiceStatus(
                name="registry",
                address=self.registry_url,
                pid=self._pid("registry"),
                answering=registry_answers(self.registry_url),
                log_file=self.log_dir / "registry.log",
            ),
        ]

    # -- preparing ------------------------------------------------------------------------------

    def _ensure_kafka_jars(self) -> None:
        if any(self.kafka_libs.glob("kafka_2.13-*.jar")):
            return
        if not shutil.which("mvn"):
            raise ServiceError(
                "Maven (mvn) is needed once to fetch the Kafka jars from Maven Central: "
                "install it (apt-get install maven) and run `make services` again."
            )
        self.kafka_libs.mkdir(parents=True, exist_ok=True)
        _run_or_explain(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(DEPLOY_LOCAL / "kafka" / "pom.xml"),
                "dependency:copy-dependencies",
                f"-Dkafka.libs={self.kafka_libs}",
            ],
            what="fetching the Kafka jars from Maven Central",
            advice="check that Maven Central is reachable (proxy settings in ~/.m2/settings.xml)",
        )

    def _ensure_ferretdb(self) -> None:
        if self.ferretdb_bin.exists():
            return
        if not shutil.which("go"):
            raise ServiceError(
                "Go 1.24+ is needed once to build FerretDB v1.24.2: install it and run `make services` again."
            )
        self.ferretdb_bin.parent.mkdir(parents=True, exist_ok=True)
        _run_or_explain(
            ["go", "build", "-o", str(self.ferretdb_bin), "."],
            what="building FerretDB v1.24.2 from the Go module proxy",
            advice="check that the Go module proxy is reachable (GOPROXY)",
            cwd=DEPLOY_LOCAL / "ferretdb",
            env={**os.environ, "CGO_ENABLED": "0"},
        )

    def _ensure_registry(self) -> None:
        """Fetch Apicurio Registry's runnable build once (Maven's local repository caches the
        archive) and unpack it under ``home``; the archive's sha1 must be the pinned one."""
        if (self.registry_dir / REGISTRY_JAR).exists():
            return
        if not shutil.which("mvn"):
            raise ServiceError(
                "Maven (mvn) is needed once to fetch Apicurio Registry from Maven Central: "
                "install it (apt-get install maven) and run `make services` again."
            )
        downloads = self.registry_dir.parent / "downloads"
        _run_or_explain(
            [
                "mvn",
                "-q",
                "-B",
                "org.apache.maven.plugins:maven-dependency-plugin:2.8:copy",
                f"-Dartifact={REGISTRY_ARTIFACT}",
                "-Dtransitive=false",
                f"-DoutputDirectory={downloads}",
            ],
            what=f"fetching Apicurio Registry {REGISTRY_VERSION} from Maven Central",
            advice="check that Maven Central is reachable (proxy settings in ~/.m2/settings.xml)",
            cwd=self.home,
        )
        archive = downloads / f"apicurio-registry-app-{REGISTRY_VERSION}-all.tar.gz"
        unpack_registry(archive, self.registry_dir)
        archive.unlink()

    # -- Kafka --------------------------------------------------------------------------------

    def _start_kafka(self) -> None:
        address = f"127.0.0.1:{self.settings.kafka_port}"
        if self._running("kafka") and kafka_answers(address):
            return
        if not shutil.which("java"):
            raise ServiceError(
                "Java 17+ is needed to run the Kafka broker and was not found on PATH: "
                "install it (apt-get install openjdk-17-jre-headless)."
            )
        _require_free_port(self.settings.kafka_port, "Kafka", "NOVAMIND_LOCAL__KAFKA_PORT")
        _require_free_port(
            self.settings.kafka_controller_port,
            "the Kafka controller",
            "NOVAMIND_LOCAL__KAFKA_CONTROLLER_PORT",
        )
        config = self._render_kafka_config()
        self._format_kafka_storage(config)
        log_dir = self.log_dir / "kafka"
        log_dir.mkdir(parents=True, exist_ok=True)
        command = [
            "java",
            f"-Xms{self.settings.kafka_heap}",
            f"-Xmx{self.settings.kafka_heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:ActiveProcessorCount=2",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={log_dir}",
            f"-Dlog4j2.configurationFile={DEPLOY_LOCAL / 'kafka' / 'log4j2.yaml'}",
            "-cp",
            f"{self.kafka_libs}/*",
            "kafka.Kafka",
            str(config),
        ]
        self._spawn("kafka", command, log_dir / "stdout.log")
        self._wait("kafka", lambda: kafka_answers(address), log_dir / "server.log")

    def _render_kafka_config(self) -> Path:
        template = Template((DEPLOY_LOCAL / "kafka" / "server.properties.template").read_text())
        config = self.home / "kafka" / "server.properties"
        config.write_text(
            template.substitute(
                KAFKA_PORT=self.settings.kafka_port,
                CONTROLLER_PORT=self.settings.kafka_controller_port,
                DATA_DIR=self.kafka_data,
            )
        )
        return config

    def _format_kafka_storage(self, config: Path) -> None:
        if (self.kafka_data / "meta.properties").exists():
            return  # formatted before: the data survives restarts
        cluster_id = new_cluster_id()
        _run_or_explain(
            [
                "java",
                "-cp",
                f"{self.kafka_libs}/*",
                f"-Dlog4j2.configurationFile={DEPLOY_LOCAL / 'kafka' / 'log4j2.yaml'}",
                f"-Dkafka.logs.dir={self.log_dir / 'kafka'}",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(config),
                "--ignore-formatted",
            ],
            what="formatting the Kafka KRaft storage",
            advice=f"remove {self.kafka_data} if it holds data of another cluster",
        )

    # -- FerretDB -----------------------------------------------------------------------------

    def _start_ferretdb(self) -> None:
        uri = f"mongodb://127.0.0.1:{self.settings.mongo_port}/"
        if self._running("ferretdb") and mongo_answers(uri):
            return
        _require_free_port(self.settings.mongo_port, "FerretDB", "NOVAMIND_LOCAL__MONGO_PORT")
        command = [
            str(self.ferretdb_bin),
            f"--listen-addr=127.0.0.1:{self.settings.mongo_port}",
            f"--sqlite-url=file:{self.mongo_data}/",
            "--log-level=warn",
        ]
        log = self.log_dir / "ferretdb.log"
        self._spawn("ferretdb", command, log)
        self._wait("ferretdb", lambda: mongo_answers(uri), log)

    # -- schema registry ----------------------------------------------------------------------

    def _start_registry(self) -> None:
        if self._running("registry") and registry_answers(self.registry_url):
            return
        if not shutil.which("java"):
            raise ServiceError(
                "Java 17+ is needed to run Apicurio Registry and was not found on PATH: "
                "install it (apt-get install openjdk-17-jre-headless)."
            )
        port = self.settings.registry_port
        _require_free_port(port, "the schema registry", "NOVAMIND_LOCAL__REGISTRY_PORT")
        heap = self.settings.registry_heap
        command = [
            "java",
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseSerialGC",
            "-XX:ActiveProcessorCount=2",
            "-Djava.awt.headless=true",
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={port}",
            "-Dquarkus.log.console.format=%d{HH:mm:ss} %-5p [%c{2.}] %s%e%n",
            "-Dapicurio.storage.kind=sql",
            "-Dapicurio.storage.sql.kind=h2",
            f"-Dapicurio.datasource.url=jdbc:h2:file:{self.registry_data / 'registry'}",
            "-jar",
            str(self.registry_dir / REGISTRY_JAR),
        ]
        log = self.log_dir / "registry.log"
        self._spawn("registry", command, log)
        self._wait("registry", lambda: registry_answers(self.registry_url), log)

    # -- processes ----------------------------------------------------------------------------

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _pid(self, name: str) -> int | None:
        try:
            pid = int(self._pid_file(name).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        try:  # started by this process and exited: reap it (a zombie still answers kill 0)
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return None
        except ChildProcessError:
            pass  # not our child: init reaps it
        return pid

    def _running(self, name: str) -> bool:
        return self._pid(name) is not None

    def _spawn(self, name: str, command: list[str], log: Path) -> None:
        process = spawn(command, output=log, cwd=self.home)
        self._pid_file(name).write_text(str(process.pid))

    def _wait(self, name: str, answers: Callable[[], bool], log: Path) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if answers():
                return
            if not self._running(name):
                raise ServiceError(f"{name} exited during start-up; its log is {log}:\n{_tail(log)}")
            time.sleep(0.5)
        raise ServiceError(
            f"{name} did not answer within {self.settings.start_timeout_s:.0f}s; its log is {log}:\n"
            f"{_tail(log)}"
        )

    def _stop(self, name: str) -> None:
        pid = self._pid(name)
        if pid is None:
            self._pid_file(name).unlink(missing_ok=True)
            return
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self._running(name):
            time.sleep(0.2)
        if self._running(name):
            os.killpg(pid, signal.SIGKILL)
        self._pid_file(name).unlink(missing_ok=True)


def spawn(command: list[str], *, output: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in a session of its own (so that a signal to its process group reaches
    all of it and a Ctrl-C in the terminal does not), its stdout and stderr appended to ``output``."""
    with output.open("ab") as out:
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=cwd,
        )


class ManagedServer:
    """A server process owned by the object that starts it (the secured broker, the TLS
    FerretDB), unlike the services of :class:`LocalServices`, which are found again through pid
    files: it runs in a session of its own and is stopped with its process group, at the latest
    when the ``with`` block ends. A subclass names it in ``server_name`` and starts it in
    :meth:`start` with :meth:`_launch`."""

    server_name: ClassVar[str]  # as errors say it, e.g. "the secured broker"

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the process this object started: SIGTERM to its process group, SIGKILL when it
        has not exited after 30 s."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(
        self,
        command: list[str],
        *,
        output: Path,
        cwd: Path,
        log: Path,
        answers: Callable[[], bool],
        timeout_s: float,
    ) -> None:
        """Spawn ``command`` (see :func:`spawn`) and return once ``answers()`` is true.

        Raises
        ------
        ServiceError
            The process exited first, or did not answer within ``timeout_s`` (it is stopped
            then); the message quotes the end of ``log``.
        """
        self._process = spawn(command, output=output, cwd=cwd)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise ServiceError(f"{self.server_name} exited during start-up ({log}):\n{_tail(log)}")
            if answers():
                return
            time.sleep(0.5)
        self.stop()
        raise ServiceError(
            f"{self.server_name} did not answer within {timeout_s:.0f}s ({log}):\n{_tail(log)}"
        )


def kafka_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when a Kafka broker answers a metadata request."""
    if not _port_open(bootstrap):
        return False
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        admin.list_topics(timeout=timeout)
    except Exception:
        return False
    return True


def mongo_answers(uri: str, timeout_ms: int = 2000, *, ca_file: Path | None = None) -> bool:
    """True when a MongoDB-compatible server answers ``ping`` (over TLS, verified against
    ``ca_file``, when one is given)."""
    options: dict[str, Any] = {"serverSelectionTimeoutMS": timeout_ms}
    if ca_file is not None:
        options.update(tls=True, tlsCAFile=str(ca_file))
    client: MongoClient[dict[str, object]] = MongoClient(uri, **options)
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    finally:
        client.close()
    return True


def registry_answers(url: str, timeout: float = 2.0) -> bool:
    """True when a Confluent-compatible schema registry lists its subjects."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/subjects", timeout=timeout) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def unpack_registry(archive: Path, target: Path) -> None:
    """Check the archive's sha1 against the pinned one and unpack it into ``target``."""
    if not archive.exists():
        raise ServiceError(f"Apicurio Registry archive missing after the download: {archive}")
    digest = hashlib.sha1(archive.read_bytes(), usedforsecurity=False).hexdigest()
    if digest != REGISTRY_SHA1:
        raise ServiceError(
            f"Apicurio Registry archive {archive} has sha1 {digest}, expected {REGISTRY_SHA1}: "
            "remove it and run `make services` again"
        )
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(partial, filter="data")
    if not (partial / REGISTRY_JAR).exists():
        raise ServiceError(f"{archive} holds no {REGISTRY_JAR}")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def _port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except OSError:
        return False


def _require_free_port(port: int, what: str, variable: str) -> None:
    if _port_open(f"127.0.0.1:{port}"):
        raise ServiceError(
            f"port {port} for {what} is taken by another process: stop it, or choose another "
            f"port with {variable}=..."
        )


def new_cluster_id() -> str:
    """A random KRaft cluster id (base64url UUID) that does not start with "-": the storage
    tool would read such an id as an option (Kafka's own ``Uuid.randomUuid`` skips them too)."""
    while True:
        cluster_id = urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _run_or_explain(
    command: list[str],
    *,
    what: str,
    advice: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=1800)
    except FileNotFoundError as exc:
        raise ServiceError(f"{what} failed: {exc.filename} not found") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise ServiceError(f"{what} failed ({advice}):\n" + "\n".join(output))


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"
