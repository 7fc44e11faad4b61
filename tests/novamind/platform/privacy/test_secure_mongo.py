"""The TLS FerretDB's client settings and start-up checks, without starting it."""

from __future__ import annotations

from pathlib import Path

import pytest

from novamind.app.exceptions import ServiceError
from novamind.app.secure_mongo import TlsFerretDB


def test_client_settings_verify_the_profile_ca(tmp_path: Path) -> None:
    server = TlsFerretDB(home=tmp_path, ferretdb_bin=tmp_path / "ferretdb", port=27999)
    settings = server.mongo_settings("novamind_x")
    assert settings.tls_ca_file == server.ca_file == tmp_path / "tls" / "ca.pem"
    assert settings.uri.get_secret_value() == "mongodb://localhost:27999/"
    assert settings.database == "novamind_x"


def test_missing_binary_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="make services"):
        TlsFerretDB(home=tmp_path, ferretdb_bin=tmp_path / "nothing").start()
