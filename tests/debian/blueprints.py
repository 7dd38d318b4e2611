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

# A second user whose GECOS field has upstream's comma-separated sub-fields; a plain-text password is
# crypted by the manifest generator, so only its hash reaches the image.
BOB_GECOS = "Bob Builder,Room 2,,"
EXTRA_REPO = {"id": "h3extra", "name": "h3 extra", "baseurls": ["http://deb.example.org/debian"],
              "gpgkeys": ["/usr/share/keyrings/debian-archive-keyring.gpg"], "enabled": False}

FULL: dict[str, Any] = {
    "name": "h3-full",
    "version": "0.0.1",
    "packages": [{"name": "tmux", "version": "3.3*"}, {"name": "sudo", "version": "*"}],
    "customizations": {
        "hostname": "h3-host",
        "kernel": {"append": "h3.marker=1"},
        "sshkey": [{"user": "root", "key": SSH_KEY}],
        "user": [{"name": "alice", "description": "Alice H3", "key": SSH_KEY, "groups": ["sudo", "devs"],
                  "uid": 1234, "shell": "/bin/bash", "home": "/home/alice"},
                 {"name": "bob", "description": BOB_GECOS, "password": "h3-not-a-secret", "uid": 1235,
                  "gid": 2345, "expiredate": 40000, "force_password_reset": True}],
        "group": [{"name": "devs", "gid": 2345}, {"name": "ops"}],
        "timezone": {"timezone": "Europe/Berlin", "ntpservers": ["ntp.h3.example.org"]},
        "locale": {"languages": ["en_US.UTF-8", "de_DE.UTF-8"], "keyboard": "de"},
        "firewall": {"ports": ["2222:tcp"], "services": {"enabled": ["http"], "disabled": ["dhcpv6-client"]}},
        "services": {"enabled": ["systemd-networkd"], "disabled": ["e2scrub_reap"], "masked": ["e2scrub_all.timer"]},
        "filesystem": [{"mountpoint": "/", "minsize": "3 GiB"}],
        "directories": [{"path": "/etc/h3test", "mode": "0750"},
                        {"path": "/srv/h3/owned", "user": "alice", "group": "devs", "mode": "0770",
                         "ensure_parents": True}],
        "files": [{"path": "/etc/h3test/hello.txt", "data": "hello from h3\n", "mode": "0640"},
                  {"path": "/srv/h3/owned/note.txt", "data": "bob's\n", "user": "bob", "group": "ops"}],
        "repositories": [EXTRA_REPO],
        "cacerts": {"pem_certs": [TEST_CA_PEM]},
    },
}

SMALL: dict[str, Any] = {
    "name": "h3-small",
    "version": "0.0.1",
    "packages": [{"name": "less", "version": "*"}],
    "customizations": {"hostname": "h3-tar", "timezone": {"timezone": "Europe/Berlin"}},
}
