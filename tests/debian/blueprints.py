"""Blueprints the Debian tests build: one with every customization Debian supports."""

from __future__ import annotations

import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH3test0nly0key0for0osbuildd0h3tests0000000 alice@h3"


def _test_ca() -> str:
    """A self-signed test CA made at import time. Ed25519 from a fixed seed with fixed dates signs
    deterministically, so the PEM (and the os pipeline's checkpoint in the shared store) is the same every run."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(b"osbuildd-h3-test-ca-seed-32bytes")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "osbuildd h3 test CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x05B0_11DD).not_valid_before(datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC))
            .not_valid_after(datetime.datetime(2125, 1, 1, tzinfo=datetime.UTC))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, None))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


TEST_CA_PEM = _test_ca()

FULL: dict[str, Any] = {
    "name": "h3-full",
    "version": "0.0.1",
    "packages": [{"name": "tmux", "version": "3.3*"}, {"name": "sudo", "version": "*"}],
    "customizations": {
        "hostname": "h3-host",
        "kernel": {"append": "h3.marker=1"},
        "user": [{"name": "alice", "description": "Alice H3", "key": SSH_KEY, "groups": ["sudo", "devs"],
                  "uid": 1234, "shell": "/bin/bash", "home": "/home/alice"}],
        "group": [{"name": "devs", "gid": 2345}],
        "timezone": {"timezone": "Europe/Berlin"},
        "locale": {"languages": ["en_US.UTF-8"]},
        "services": {"enabled": ["systemd-networkd"], "disabled": ["e2scrub_reap"]},
        "filesystem": [{"mountpoint": "/", "minsize": "3 GiB"}],
        "directories": [{"path": "/etc/h3test", "mode": "0750"}],
        "files": [{"path": "/etc/h3test/hello.txt", "data": "hello from h3\n", "mode": "0640"}],
        "cacerts": {"pem_certs": [TEST_CA_PEM]},
    },
}

SMALL: dict[str, Any] = {
    "name": "h3-small",
    "version": "0.0.1",
    "packages": [{"name": "less", "version": "*"}],
    "customizations": {"hostname": "h3-tar", "timezone": {"timezone": "Europe/Berlin"}},
}
