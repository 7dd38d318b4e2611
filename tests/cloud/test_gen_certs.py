"""``osbuildd gen-certs DIR``: upstream's tools/gen-certs.sh files and names (its test openssl.cnf),
checked with ``openssl verify`` and ``cryptography``; existing files refused without --force."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from conftest import need_tool
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .tlsutil import REPO, gen_certs

FILES = ["ca-crt.pem", "ca-key.pem", "composer-crt.pem", "composer-key.pem", "worker-crt.pem",
         "worker-key.pem", "client-crt.pem", "client-key.pem"]


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _names(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(n.value) for n in san]


def test_files_modes_and_openssl_verify(certs: Path) -> None:
    openssl = need_tool("openssl")
    assert sorted(p.name for p in certs.iterdir()) == sorted(FILES)
    for name in FILES:
        mode = stat.S_IMODE((certs / name).stat().st_mode)
        assert mode == (0o600 if name.endswith("-key.pem") else 0o644), (name, oct(mode))
    for leaf in ("composer", "worker", "client"):
        out = subprocess.run([openssl, "verify", "-CAfile", str(certs / "ca-crt.pem"), str(certs / f"{leaf}-crt.pem")],
                             capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.strip().endswith(": OK"), out
        purpose = "sslserver" if leaf == "composer" else "sslclient"
        out = subprocess.run([openssl, "verify", "-purpose", purpose, "-CAfile", str(certs / "ca-crt.pem"),
                              str(certs / f"{leaf}-crt.pem")], capture_output=True, text=True)
        assert out.returncode == 0, out
        # each key belongs to its certificate
        mod = [subprocess.run([openssl, kind, "-noout", "-modulus", "-in", str(certs / f"{leaf}-{suffix}.pem")],
                              capture_output=True, text=True, check=True).stdout
               for kind, suffix in (("x509", "crt"), ("rsa", "key"))]
        assert mod[0] == mod[1]


def test_names_and_extensions_as_upstream(certs: Path) -> None:
    ca = _cert(certs / "ca-crt.pem")
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "osbuild.org"
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    expected = {"composer": ("localhost", ["localhost", "composer", "127.0.0.1", "::1"], ExtendedKeyUsageOID.SERVER_AUTH),
                "worker": ("localhost", ["localhost", "worker"], ExtendedKeyUsageOID.CLIENT_AUTH),
                "client": ("client.osbuild.org", ["client.osbuild.org"], ExtendedKeyUsageOID.CLIENT_AUTH)}
    for leaf, (cn, names, eku) in expected.items():
        cert = _cert(certs / f"{leaf}-crt.pem")
        assert cert.issuer == ca.subject
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == cn
        assert cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)[0].value == "osbuild@example.com"
        assert _names(cert) == names
        assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [eku]
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 3650


def test_san_adds_server_names(tmp_path: Path) -> None:
    out = gen_certs(tmp_path / "x", "composer.example.org", "192.0.2.7", "2001:db8::1")
    names = _names(_cert(out / "composer-crt.pem"))
    assert names[:4] == ["localhost", "composer", "127.0.0.1", "::1"]
    assert "composer.example.org" in names
    assert "192.0.2.7" in names
    assert "2001:db8::1" in names
    assert _names(_cert(out / "client-crt.pem")) == ["client.osbuild.org"]   # only the server's


def test_existing_files_refused_without_force(tmp_path: Path) -> None:
    out = gen_certs(tmp_path / "y")
    before = (out / "ca-crt.pem").read_bytes()
    run = [sys.executable, "-m", "osbuildd.cli", "gen-certs", str(out)]
    done = subprocess.run(run, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "exists" in done.stderr and "--force" in done.stderr, done.stderr
    assert (out / "ca-crt.pem").read_bytes() == before
    done = subprocess.run([*run, "--force"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out / "ca-crt.pem").read_bytes() != before
    bad = subprocess.run([*run[:-1], str(tmp_path / "z"), "--san", "bad name"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and "bad name" in bad.stderr and not (tmp_path / "z").exists()
