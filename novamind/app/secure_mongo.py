"""A MongoDB-wire server that speaks only TLS: FerretDB with its TLS listener and no plain one.

The twin of :class:`novamind.app.secure_broker.SecureBroker` for the twin store: the same
FerretDB binary as ``make services`` (``.local/bin/ferretdb``), its own port, data folder and
certificates (:func:`novamind.platform.privacy.pki.local_pki`, ``<home>/tls``), so it never disturbs the
FerretDB of ``make services``. Clients get :meth:`TlsFerretDB.mongo_settings`, whose CA file makes
:func:`novamind.platform.mongo.mongo_client` connect with ``tls=True`` and verify the certificate and the
host name.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from novamind.app.exceptions import ServiceError
from novamind.app.localservices import ManagedServer, _require_free_port, mongo_answers
from novamind.platform.privacy.pki import TlsFiles, local_pki
from novamind.platform.settings import MongoSettings


class TlsFerretDB(ManagedServer):
    """Start, stop and connect to one FerretDB listening on TLS only."""

    server_name = "the TLS FerretDB"

    def __init__(
        self,
        *,
        home: Path,
        ferretdb_bin: Path,
        port: int = 27018,
        host: str = "localhost",
        start_timeout_s: float = 60.0,
    ) -> None:
        super().__init__()
        self.home = home.resolve()
        self.ferretdb_bin = ferretdb_bin
        self.port = port
        self.host = host
        self.start_timeout_s = start_timeout_s
        self.data_dir = self.home / "data"
        self.log_file = self.home / "ferretdb.log"
        self.tls_dir = self.home / "tls"

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
        self._launch(
            command,
            output=self.log_file,
            cwd=self.home,
            log=self.log_file,
            answers=lambda: mongo_answers(self.uri, timeout_ms=1000, ca_file=self.ca_file),
            timeout_s=self.start_timeout_s,
        )
