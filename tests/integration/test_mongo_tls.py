"""The twin store over TLS: a second FerretDB, started here on a free port with the profile's
certificates and no plain listener (the shared FerretDB of ``make services`` is not touched)."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.errors import ServerSelectionTimeoutError

from novamind.app.secure_mongo import TlsFerretDB
from novamind.platform.mongo import database, mongo_client
from novamind.platform.privacy.pki import local_pki
from novamind.platform.settings import Settings
from workers.pipeline.twin import TwinEntry
from workers.twin.store import TWINS, TwinStore
from workers.twin.twin import new_twin

PATIENT = "p_" + "5c" * 16


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def tls_mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsFerretDB]:
    binary = Settings().local.home / "bin" / "ferretdb"
    if not binary.exists():
        pytest.skip(f"the TLS FerretDB runs the binary of `make services` ({binary})")
    with TlsFerretDB(
        home=tmp_path_factory.mktemp("tls-ferretdb"), ferretdb_bin=binary, port=_free_port()
    ) as server:
        yield server


def _ping(uri: str, **options: object) -> None:
    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=3000, **options)
    try:
        client.admin.command("ping")
    finally:
        client.close()


async def test_the_twin_store_works_over_tls(tls_mongo: TlsFerretDB) -> None:
    mongo = tls_mongo.mongo_settings("novamind_tls")
    client = mongo_client(mongo, app_name="tls-test")  # tls=True + the CA file, from settings
    try:
        store = TwinStore(db=database(client, mongo), keep_versions=3)
        await store.ensure_indexes()
        entry = TwinEntry(new_twin(PATIENT), offset=5)
        entry.snapshot_due = True
        assert await store.save({PATIENT: entry}, now=dt.datetime.now(dt.UTC)) == 1
        stored = await database(client, mongo)[TWINS].find_one({"_id": PATIENT})
        assert stored is not None and stored["applied_offset"] == 5
    finally:
        await client.close()


def test_a_plaintext_client_is_refused(tls_mongo: TlsFerretDB) -> None:
    with pytest.raises(ServerSelectionTimeoutError):
        _ping(tls_mongo.uri)


def test_a_client_trusting_another_ca_fails_verification(tls_mongo: TlsFerretDB, tmp_path: Path) -> None:
    other = local_pki(tmp_path / "other-ca").ca_cert
    with pytest.raises(ServerSelectionTimeoutError, match="certificate verify failed"):
        _ping(tls_mongo.uri, tls=True, tlsCAFile=str(other))


def test_a_client_with_only_the_system_cas_fails_verification(tls_mongo: TlsFerretDB) -> None:
    with pytest.raises(ServerSelectionTimeoutError, match="certificate verify failed"):
        _ping(tls_mongo.uri, tls=True)


def test_both_loopback_names_verify(tls_mongo: TlsFerretDB) -> None:
    for host in ("localhost", "127.0.0.1"):
        _ping(f"mongodb://{host}:{tls_mongo.port}/", tls=True, tlsCAFile=str(tls_mongo.ca_file))


def test_a_name_the_certificate_does_not_carry_fails_verification(tls_mongo: TlsFerretDB) -> None:
    name = socket.gethostname()  # reaches the loopback listener, not in the certificate
    try:
        address = socket.gethostbyname(name)
    except OSError:
        address = ""
    if address != "127.0.0.1" or name in ("localhost", "127.0.0.1"):
        pytest.skip(f"needs a host name other than localhost that resolves to 127.0.0.1 ({name})")
    with pytest.raises(ServerSelectionTimeoutError, match="certificate verify failed"):
        _ping(f"mongodb://{name}:{tls_mongo.port}/", tls=True, tlsCAFile=str(tls_mongo.ca_file))
