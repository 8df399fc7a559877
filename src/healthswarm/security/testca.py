"""A throw-away certificate authority for tests and for trying TLS out: a CA, a server and a client certificate.

Keys are ECDSA P-256 (quick to make, accepted by every TLS 1.2+ stack) and written 0600. Leaf
certificates carry both serverAuth and clientAuth, so one of them serves a swarm node that listens and
connects (mutual TLS). Not for production: a real consortium CA keeps its key offline.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
VALIDITY = timedelta(days=365)


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "healthswarm test CA"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(hosts: tuple[str, ...] | list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _write(folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return Issued(cert_path, key_path)


class TestCA:
    """A CA in memory that issues leaf certificates into a folder."""

    __test__ = False  # not a pytest class, despite the name

    def __init__(self, name: str = "healthswarm test CA") -> None:
        now = datetime.now(UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + VALIDITY)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
                     .sign(self.key, hashes.SHA256()))

    def write_ca(self, folder: Path) -> Path:
        """Only the certificate: the CA key stays in memory, so the folder cannot mint more certificates."""
        path = folder / "ca.pem"
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(self, folder: Path, stem: str, common_name: str, hosts: tuple[str, ...] | list[str] = DEFAULT_HOSTS,
              server: bool = True) -> Issued:
        """A leaf certificate `<stem>.pem` + `<stem>.key`; `server=False` makes a client-only certificate."""
        now = datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
        builder = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + VALIDITY)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                  critical=False))
        if server:
            builder = builder.add_extension(_san(hosts), critical=False)
        return _write(folder, stem, builder.sign(self.key, hashes.SHA256()), key)


def make_test_ca(folder: Path, hosts: tuple[str, ...] | list[str] = DEFAULT_HOSTS,
                 nodes: tuple[str, ...] | list[str] = ()) -> tuple[Path, dict[str, Issued]]:
    """Write ca.pem, then server, client and one `node-<name>` pair per node name into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = TestCA()
    ca_path = ca.write_ca(folder)
    issued = {"server": ca.issue(folder, "server", hosts[0] if hosts else "server", hosts),
              "client": ca.issue(folder, "client", "client", server=False)}
    for node in nodes:
        issued[f"node-{node}"] = ca.issue(folder, f"node-{node}", node, hosts)
    return ca_path, issued
