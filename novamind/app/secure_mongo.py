"""A MongoDB-wire server that speaks only TLS: FerretDB with its TLS listener and no plain one.

The twin of :class:`novamind.app.secure_broker.SecureBroker` for the twin store: the same
FerretDB binary as ``make services`` (``.local/bin/ferretdb``), its own port, data folder and
certificates (:func:`novamind.platform.privacy.pki.local_pki`, ``<home>/tls``), so it never disturbs the
FerretDB of ``make services``. Clients get :meth:`TlsFerretDB.mongo_settings`, whose CA file makes
:func:`novamind.platform.mongo.mongo_client` connect with ``tls=True`` and verify the certificate and the
host name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from pydantic import SecretStr

from novamind.app.localservices import ServiceError, _require_free_port, _tail
from novamind.platform.privacy.pki import TlsFiles, local_pki
from novamind.platform.settings import MongoSettings


class TlsFerretDB:
    """Start, stop and connect to one FerretDB listening on TLS only."""

    def __init__(
        self,
        *,
        home: Path,
        ferretdb_bin: Path,
        port: int = 27018,
        host: str = "localhost",
        start_timeout_s: float = 60.0,
    ) -> None:
        self.home = home.resolve()
        self.ferretdb_bin = ferretdb_bin
        self.port = port
        self.host = host
        self.start_timeout_s = start_timeout_s
        self.data_dir = self.home / "data"
        self.log_file = self.home / "ferretdb.log"
        self.tls_dir = self.home / "tls"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def tls(self) -> TlsFiles:
        return local_pki(self.tls_dir, common_name="NOVAMIND twin store CA")

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_cert

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"

    def mongo_settings(self, database: str) -> MongoSettings:
        """Settings of a client of this server (feed them to novamind.platform.mongo)."""
        return MongoSettings(uri=SecretStr(self.uri), database=database, tls_ca_file=self.ca_file)

    def start(self) -> None:
        if not self.ferretdb_bin.exists():
            raise ServiceError(
                f"no FerretDB binary at {self.ferretdb_bin}: run `make services` once to build it"
            )
        _require_free_port(self.port, "the TLS FerretDB", "a different port")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tls = self.tls
        command = [
            str(self.ferretdb_bin),
            "--listen-addr=",  # no plain TCP listener at all
            f"--listen-tls=127.0.0.1:{self.port}",
            f"--listen-tls-cert-file={tls.server_cert}",
            f"--listen-tls-key-file={tls.server_key}",
            f"--sqlite-url=file:{self.data_dir}/",
            "--log-level=warn",
        ]
        with self.log_file.open("ab") as out:
            self._process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.home,
            )
        self._wait_until_ready()

    def stop(self) -> None:
        """Stop the server this object started (its process group only)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def __enter__(self) -> TlsFerretDB:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_ready(self) -> None:
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise ServiceError(
                    f"the TLS FerretDB exited during start-up ({self.log_file}):\n{_tail(self.log_file)}"
                )
            client: MongoClient[dict[str, object]] = MongoClient(
                self.uri, tls=True, tlsCAFile=str(self.ca_file), serverSelectionTimeoutMS=1000
            )
            try:
                client.admin.command("ping")
            except PyMongoError:
                time.sleep(0.5)
            else:
                return
            finally:
                client.close()
        self.stop()
        raise ServiceError(
            f"the TLS FerretDB did not answer within {self.start_timeout_s:.0f}s ({self.log_file}):\n"
            f"{_tail(self.log_file)}"
        )
