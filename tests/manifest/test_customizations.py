"""customizations.py on its own: each blueprint customization -> the stage options upstream writes."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest

from osbuildd.blueprint import BlueprintError
from osbuildd.manifest import customizations as cz


def test_sshkey_and_users_merge_and_plain_password_is_crypted() -> None:
    c = {"sshkey": [{"user": "root", "key": "ssh-ed25519 AAAA root"}],
         "user": [{"name": "alice", "password": "secret", "groups": ["wheel"], "uid": 1200}]}
    users = cz.users_stage(c, random.Random(1))["options"]["users"]
    assert users["root"] == {"key": "ssh-ed25519 AAAA root"}
    assert users["alice"]["password"].startswith("$6$") and "secret" not in users["alice"]["password"]
    again = cz.users_stage(c, random.Random(1))["options"]["users"]
    assert again["alice"]["password"] == users["alice"]["password"]      # salt from the seed
    hashed = "$6$abc$xyz"
    c["user"][0]["password"] = hashed
    assert cz.users_stage(c, random.Random(1))["options"]["users"]["alice"]["password"] == hashed
    assert cz.users_stage({}, random.Random(1)) is None


def test_files_are_inline_sources_copied_to_their_paths() -> None:
    inline = cz.InlineFiles()
    c = {"files": [{"path": "/etc/motd", "data": "hello\n", "mode": "0600", "user": "root"},
                   {"path": "/etc/empty"}],
         "directories": [{"path": "/srv/app", "mode": "0750", "ensure_parents": True}, {"path": "/var/x"}]}
    stages = cz.directories_files_stages(c, inline)
    assert [s["type"] for s in stages] == ["org.osbuild.mkdir", "org.osbuild.chmod", "org.osbuild.copy",
                                           "org.osbuild.chmod", "org.osbuild.chown"]
    assert stages[0]["options"]["paths"] == [{"path": "/srv/app", "parents": True}, {"path": "/var/x", "exist_ok": True}]
    digest = hashlib.sha256(b"hello\n").hexdigest()
    src = inline.source()["items"]
    assert base64.b64decode(src[f"sha256:{digest}"]["data"]) == b"hello\n"
    assert f"sha256:{hashlib.sha256(b'').hexdigest()}" in src
    paths = stages[2]["options"]["paths"]
    assert {"from": f"input://file-{digest}/sha256:{digest}", "to": "tree:///etc/motd",
            "remove_destination": True} in paths
    assert stages[4]["options"]["items"] == {"/etc/motd": {"user": "root"}}


def test_rpm_repositories_with_key_text_ship_the_key() -> None:
    inline = cz.InlineFiles()
    key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nabc\n-----END PGP PUBLIC KEY BLOCK-----"
    c = {"repositories": [{"id": "ex", "baseurls": ["https://example.com/repo"], "gpgkeys": [key],
                           "gpgcheck": True, "filename": "ex.repo"},
                          {"id": "ml", "metalink": "https://example.com/ml", "gpgkeys": ["https://example.com/key"]}]}
    stages = cz.repositories_stages(c, "rpm", "", inline)
    types = [s["type"] for s in stages]
    assert types == ["org.osbuild.mkdir", "org.osbuild.copy", "org.osbuild.yum.repos", "org.osbuild.yum.repos"]
    ex = stages[2]["options"]
    assert ex["filename"] == "ex.repo"
    assert ex["repos"][0]["gpgkey"] == ["file:///etc/pki/rpm-gpg/RPM-GPG-KEY-ex-0"]
    assert stages[3]["options"] == {"filename": "ml.repo", "repos": [
        {"id": "ml", "metalink": "https://example.com/ml", "gpgkey": ["https://example.com/key"]}]}


def test_debian_repositories_become_apt_sources() -> None:
    c = {"repositories": [{"id": "backports", "baseurls": ["http://deb.debian.org/debian"],
                           "gpgkeys": ["/usr/share/keyrings/debian-archive-keyring.gpg"], "enabled": False}]}
    [s] = cz.repositories_stages(c, "debian", "bookworm", cz.InlineFiles())
    assert s == {"type": "org.osbuildd.apt.sources", "options": {"sources": [{
        "filename": "backports.sources", "uris": ["http://deb.debian.org/debian"], "suites": ["bookworm"],
        "components": ["main"], "signed_by": "/usr/share/keyrings/debian-archive-keyring.gpg", "enabled": False}]}}


def test_locale_timezone_services_kernel() -> None:
    c = {"locale": {"languages": ["de_DE.UTF-8", "en_US.UTF-8"], "keyboard": "de"},
         "timezone": {"timezone": "Europe/Berlin", "ntpservers": ["a.example", "b.example"]},
         "services": {"enabled": ["sshd", "custom"], "disabled": ["cups"]}, "kernel": {"append": " quiet "}}
    assert cz.locale_stages(c, "rpm", "C.UTF-8") == [
        {"type": "org.osbuild.locale", "options": {"language": "de_DE.UTF-8"}},
        {"type": "org.osbuild.keymap", "options": {"keymap": "de"}}]
    assert cz.locale_stages(c, "debian", "C.UTF-8")[0] == {
        "type": "org.osbuildd.debian.locale", "options": {"language": "de_DE.UTF-8", "additional": ["en_US.UTF-8"]}}
    assert cz.locale_stages({}, "rpm", "C.UTF-8") == [{"type": "org.osbuild.locale", "options": {"language": "C.UTF-8"}}]
    assert cz.timezone_stage(c)["options"] == {"zone": "Europe/Berlin"}
    assert cz.chrony_stage(c)["options"]["servers"] == [{"hostname": "a.example"}, {"hostname": "b.example"}]
    assert cz.systemd_stage(c, ["sshd", "cloud-init"], None, "multi-user.target")["options"] == {
        "enabled_services": ["sshd", "cloud-init", "custom"], "disabled_services": ["cups"],
        "default_target": "multi-user.target"}
    assert cz.kernel_options("ro console=ttyS0", c) == "ro console=ttyS0 quiet"
    assert cz.extra_packages(c, "rpm") == ["chrony"]


def test_sizes() -> None:
    assert cz.parse_size("2 GiB", "f") == 2 << 30
    assert cz.parse_size("500MiB", "f") == 500 << 20
    assert cz.parse_size(1000, "f") == 1000
    with pytest.raises(BlueprintError) as exc:
        cz.parse_size("lots", "customizations.filesystem[0].minsize")
    assert exc.value.field == "customizations.filesystem[0].minsize"
    assert cz.filesystem_minsizes({"filesystem": [{"mountpoint": "/", "minsize": "1 GiB"},
                                                  {"mountpoint": "/", "minsize": "3 GiB"}]}) == {"/": 3 << 30}
