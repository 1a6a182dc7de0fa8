"""A throwaway certificate authority for TLS tests, written as PEM files.

    <folder>/
      ca.crt      ca.key        the test CA (self-signed, EC P-256)
      server.crt  server.key    a server certificate for 127.0.0.1 and localhost
      client.crt  client.key    a client certificate signed by the CA (mutual TLS)

Everything is made with `cryptography` for one test run; nothing is trusted
system-wide. The extensions are those strict verifiers (Go's crypto/x509, and
OpenSSL in strict mode) insist on: key identifiers, key usage, and the extended
key usage that matches each certificate's role.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=2)
# Clocks on shared machines drift a little: validity starts in the past.
BACKDATE = datetime.timedelta(hours=1)
SERVER_IP = "127.0.0.1"


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA that signs server and client certificates."""

    files: KeyPair
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, folder: Path, name: str = "ca") -> CertificateAuthority:
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(f"Dockyard test CA {name}")
        certificate = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .sign(key, hashes.SHA256())
        )
        files = KeyPair(folder / f"{name}.crt", folder / f"{name}.key")
        _write(files, certificate, key)
        return cls(files, certificate, key)

    def issue_server(self, folder: Path, name: str = "server") -> KeyPair:
        """A certificate for the registry on loopback (IP and DNS names)."""
        names = x509.SubjectAlternativeName(
            [
                x509.IPAddress(ipaddress.ip_address(SERVER_IP)),
                x509.DNSName("localhost"),
            ]
        )
        return self._issue(folder, name, ExtendedKeyUsageOID.SERVER_AUTH, names)

    def issue_client(self, folder: Path, name: str = "client") -> KeyPair:
        """A certificate a client presents for mutual TLS."""
        return self._issue(folder, name, ExtendedKeyUsageOID.CLIENT_AUTH, None)

    def _issue(
        self,
        folder: Path,
        name: str,
        purpose: x509.ObjectIdentifier,
        alternative_names: x509.SubjectAlternativeName | None,
    ) -> KeyPair:
        key = ec.generate_private_key(ec.SECP256R1())
        issuer_key_id = x509.AuthorityKeyIdentifier.from_issuer_public_key(
            self.key.public_key()
        )
        builder = (
            _builder(_name(name), self.certificate.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
            .add_extension(issuer_key_id, critical=False)
        )
        if alternative_names is not None:
            builder = builder.add_extension(alternative_names, critical=False)
        certificate = builder.sign(self.key, hashes.SHA256())
        files = KeyPair(folder / f"{name}.crt", folder / f"{name}.key")
        _write(files, certificate, key)
        return files


@dataclass(frozen=True)
class Pki:
    """A CA with one server and one client certificate, all in one folder."""

    ca: CertificateAuthority
    server: KeyPair
    client: KeyPair

    @property
    def ca_cert(self) -> Path:
        return self.ca.files.cert


def make_pki(folder: Path) -> Pki:
    ca = CertificateAuthority.create(folder)
    return Pki(ca, ca.issue_server(folder), ca.issue_client(folder))


def containers_cert_dir(
    folder: Path, ca_cert: Path, client: KeyPair | None = None
) -> Path:
    """A folder in the layout of containers-certs.d(5), for `--cert-dir`.

    The tools read `*.crt` as CAs, and a `*.cert` with its `*.key` as the
    client certificate; the names matter.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.crt").write_bytes(ca_cert.read_bytes())
    if client is not None:
        (folder / "client.cert").write_bytes(client.cert.read_bytes())
        (folder / "client.key").write_bytes(client.key.read_bytes())
    return folder


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dockyard tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
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


def _write(
    files: KeyPair, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    files.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
