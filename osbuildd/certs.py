"""``osbuildd gen-certs DIR``: the X.509 files osbuild-composer's ``tools/gen-certs.sh`` makes with
its test ``openssl.cnf``, made with ``cryptography``.

- ``ca-crt.pem`` / ``ca-key.pem``: a CA, CN=osbuild.org (CA:TRUE critical; keyCertSign, cRLSign).
- ``composer-crt.pem`` / ``composer-key.pem``: the server, CN=localhost, SAN localhost, composer,
  127.0.0.1, ::1 and every ``--san`` (serverAuth).
- ``worker-crt.pem`` / ``worker-key.pem``: CN=localhost, SAN localhost, worker (clientAuth).
- ``client-crt.pem`` / ``client-key.pem``: CN=client.osbuild.org, SAN client.osbuild.org (clientAuth).
Subjects carry emailAddress=osbuild@example.com as upstream's; RSA 2048, SHA-256, 3650 days. Keys are
written mode 0600, certificates 0644, each file atomically.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAYS = 3650
EMAIL = "osbuild@example.com"
CA_CN = "osbuild.org"
SERVER_NAMES = ("localhost", "composer", "127.0.0.1", "::1")
FILES = ("ca-crt.pem", "ca-key.pem", "composer-crt.pem", "composer-key.pem", "worker-crt.pem",
         "worker-key.pem", "client-crt.pem", "client-key.pem")


class CertsExist(Exception):
    """Files gen-certs would write are there already (and no --force)."""


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _name(cn: str, email: str | None = EMAIL) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    return x509.Name(attrs)


def _general_names(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_ca(cn: str = CA_CN, *, days: int = DAYS) -> Issued:
    key = new_key()
    now = datetime.datetime.now(datetime.UTC)
    name = _name(cn, None)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def issue(ca: Issued, cn: str, names: Sequence[str], *, server: bool, email: str | None = EMAIL,
          not_before: datetime.datetime | None = None, days: int = DAYS) -> Issued:
    """A leaf signed by ``ca``: upstream's osbuild_server_ext (``server``) or osbuild_client_ext."""
    key = new_key()
    start = not_before or datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(cn, email)).issuer_name(ca.cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=server)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                              critical=False)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=not server,
                                            key_encipherment=True, data_encipherment=False, key_agreement=False,
                                            key_cert_sign=False, crl_sign=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)   # whatever the umask
    finally:
        os.close(fd)
    os.replace(tmp, path)


def generate(directory: str | Path, sans: Sequence[str] = (), *, force: bool = False) -> list[Path]:
    """Write the eight files into ``directory``; ``CertsExist`` when one is there and not ``force``."""
    directory = Path(directory)
    existing = [directory / f for f in FILES if (directory / f).exists()]
    if existing and not force:
        raise CertsExist(f"{existing[0]} exists (use --force to replace the certificates)")
    for n in sans:
        if not n or any(c in n for c in " ,/"):
            raise ValueError(f"--san {n!r}: not a DNS name or IP address")
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca()
    server_names = list(dict.fromkeys([*SERVER_NAMES, *sans]))
    made = {"ca": ca,
            "composer": issue(ca, "localhost", server_names, server=True),
            "worker": issue(ca, "localhost", ["localhost", "worker"], server=False),
            "client": issue(ca, "client.osbuild.org", ["client.osbuild.org"], server=False)}
    written = []
    for stem, issued in made.items():
        _write(directory / f"{stem}-key.pem", issued.key_pem(), 0o600)
        _write(directory / f"{stem}-crt.pem", issued.cert_pem(), 0o644)
        written += [directory / f"{stem}-crt.pem", directory / f"{stem}-key.pem"]
    return written
