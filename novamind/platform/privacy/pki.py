"""A private certificate authority for the secured local profile (TLS to Kafka and FerretDB).

:func:`local_pki` makes, once per folder, a CA certificate and a server certificate it signs for
the loopback names (``localhost`` and ``127.0.0.1`` as subject alternative names), and writes
them as PEM files: what the secured broker and the TLS FerretDB present, and what clients are
given as their CA file (``NOVAMIND_KAFKA__SSL_CAFILE``, ``NOVAMIND_MONGO__TLS_CA_FILE``). The
CA's private key never touches the disk: to issue another certificate, make a new folder.

Development and CI only. Production certificates come from the organisation's PKI or a
certificate manager, with rotation (see ``docs/security.md``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK_NAMES = ("localhost", "127.0.0.1")
_BACKDATE = dt.timedelta(minutes=5)  # tolerate a little clock skew between processes


@dataclass(frozen=True, kw_only=True)
class TlsFiles:
    """Where one profile's PEM files are."""

    ca_cert: Path
    """The CA certificate: the trust anchor clients verify the servers with."""
    server_cert: Path
    """The server certificate followed by the CA certificate (the chain a server presents)."""
    server_key: Path
    """The server's unencrypted PKCS#8 private key (mode 0600)."""


@dataclass(frozen=True)
class Authority:
    """A CA certificate and its key, kept in memory."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, common_name: str, *, days: int = 30) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    def issue_server(
        self, hosts: Sequence[str], *, days: int = 30
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A server certificate for ``hosts`` (DNS names or IP addresses) and its new key."""
        if not hosts:
            raise ValueError("a server certificate needs at least one host name")
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(min(now + dt.timedelta(days=days), self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return certificate, key


def local_pki(
    folder: Path, *, hosts: Sequence[str] = LOOPBACK_NAMES, common_name: str = "NOVAMIND local CA"
) -> TlsFiles:
    """The CA and server certificate of ``folder``, made on first use and reused afterwards."""
    files = TlsFiles(
        ca_cert=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server-key.pem",
    )
    if all(path.exists() for path in (files.ca_cert, files.server_cert, files.server_key)):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    authority = Authority.create(common_name)
    certificate, key = authority.issue_server(hosts)
    ca_pem = authority.certificate.public_bytes(serialization.Encoding.PEM)
    _write(files.server_key, private_key_pem(key), mode=0o600)
    _write(files.server_cert, certificate.public_bytes(serialization.Encoding.PEM) + ca_pem, mode=0o644)
    _write(files.ca_cert, ca_pem, mode=0o644)  # last: its presence marks a complete folder
    return files


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PKCS#8 (``BEGIN PRIVATE KEY``), the form Kafka's PEM key store reads."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write(path: Path, data: bytes, *, mode: int) -> None:
    # Created with its final mode: a private key is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
