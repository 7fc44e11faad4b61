"""The profile's certificate authority, checked with the standard library's TLS (no broker)."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from novamind.platform.privacy.pki import TlsFiles, local_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return local_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(pki: TlsFiles) -> Iterator[int]:
    """A loopback TLS server presenting the profile's server certificate; its port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    with context.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"ok")
                except (ssl.SSLError, OSError):
                    pass  # the client refused us: that is what some tests want

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    listener.close()


def _handshake(port: int, *, cafile: Path, server_hostname: str) -> bytes:
    context = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        return tls.recv(2)


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1"])
def test_clients_with_the_ca_verify_the_loopback_names(tls_server: int, pki: TlsFiles, name: str) -> None:
    assert _handshake(tls_server, cafile=pki.ca_cert, server_hostname=name) == b"ok"


def test_another_host_name_is_refused(tls_server: int, pki: TlsFiles) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _handshake(tls_server, cafile=pki.ca_cert, server_hostname="db.example.org")


def test_another_ca_is_refused(tls_server: int, tmp_path: Path) -> None:
    other = local_pki(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        _handshake(tls_server, cafile=other.ca_cert, server_hostname="localhost")


def test_certificates_are_a_ca_and_a_server_leaf(pki: TlsFiles) -> None:
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    leaf, chained_ca = x509.load_pem_x509_certificates(pki.server_cert.read_bytes())
    assert chained_ca == ca
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    leaf.verify_directly_issued_by(ca)
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]


def test_private_key_is_owner_only_and_files_are_reused(pki: TlsFiles) -> None:
    assert stat.S_IMODE(pki.server_key.stat().st_mode) == 0o600
    assert pki.server_key.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    again = local_pki(pki.ca_cert.parent)
    assert again == pki and again.ca_cert.read_bytes() == pki.ca_cert.read_bytes()
    assert not list(pki.ca_cert.parent.glob("ca-key*"))  # the CA key never reaches the disk
