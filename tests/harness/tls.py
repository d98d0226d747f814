"""Throwaway certificate authorities and certificates for TLS tests (cryptography package)."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclasses.dataclass(frozen=True)
class Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclasses.dataclass(frozen=True)
class TLSFiles:
    """Paths of a CA, a server certificate for 127.0.0.1/localhost, a client
    certificate from the same CA, and an unrelated CA (to prove verification fails)."""

    folder: Path
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(
        now + datetime.timedelta(days=1)
    )


def make_ca(common_name: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return Issued(key, _validity(builder).sign(key, hashes.SHA256()))


def issue(ca: Issued, common_name: str, *, server: bool) -> Issued:
    """A leaf certificate signed by ca: for a server (127.0.0.1 and localhost) or a client."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return Issued(key, _validity(builder).sign(ca.key, hashes.SHA256()))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    # Throwaway test keys: world-readable so redis-server in the container can read
    # them whatever user it runs as.
    path.chmod(0o644)
    return path


def _cert_pem(issued: Issued) -> bytes:
    return issued.cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(issued: Issued) -> bytes:
    return issued.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_tls_files(folder: Path) -> TLSFiles:
    """Generate a CA, a server and a client certificate, and an unrelated CA, into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = make_ca("incident-remediation test CA")
    server = issue(ca, "localhost", server=True)
    client = issue(ca, "cache-health-monitor", server=False)
    other_ca = make_ca("some other CA")
    return TLSFiles(
        folder=folder,
        ca_cert=_write(folder / "ca.crt", _cert_pem(ca)),
        server_cert=_write(folder / "server.crt", _cert_pem(server)),
        server_key=_write(folder / "server.key", _key_pem(server)),
        client_cert=_write(folder / "client.crt", _cert_pem(client)),
        client_key=_write(folder / "client.key", _key_pem(client)),
        other_ca_cert=_write(folder / "other-ca.crt", _cert_pem(other_ca)),
    )
