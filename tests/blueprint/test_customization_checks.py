"""Compose-time checks of the string customizations (issue 11, item 7): each refusal names its field,
and what the image's tools accept passes. Hostname facts: systemd 252's ``systemd-firstboot
--hostname=NAME`` (what upstream's org.osbuild.hostname runs), tried on a Debian 12 host."""

from __future__ import annotations

import json
import random

import jsonschema
import pytest

from osbuildd import distro, manifest
from osbuildd.blueprint import Blueprint, BlueprintError
from osbuildd.common.names import hostname_error
from osbuildd.engine.validation import STAGES_DIR
from osbuildd.manifest import customizations as cz

# name -> accepted by systemd-firstboot 252 (and the name it writes to /etc/hostname)
SYSTEMD_FIRSTBOOT = {
    "ok-host": "ok-host", "Ab9": "Ab9", "1a": "1a", "a.b.": "a.b", "a.b.c.": "a.b.c", "a" * 64: "a" * 64,
    "web-01.example.org": "web-01.example.org",
    "-bad host-": None, "a_b": None, "a.": None, "a" * 65: None, "a..b": None, ".a": None, "a-.b": None,
    "a.-b": None, "\u00e4": None, "": None, ".": None, "a-b-": None, "ok\n": None, "a b": None,
}


@pytest.mark.parametrize("name", sorted(SYSTEMD_FIRSTBOOT))
def test_hostname_rule_is_systemds(name: str) -> None:
    assert (hostname_error(name) is None) == (SYSTEMD_FIRSTBOOT[name] is not None)


@pytest.mark.parametrize("name", sorted(n for n in SYSTEMD_FIRSTBOOT if n != "ok\n"))
def test_engine_stage_schema_agrees(name: str) -> None:
    """The engine's org.osbuild.hostname schema refuses the same names (Python's ``$`` lets "ok\\n" by:
    the stage itself refuses that one)."""
    meta = json.loads((STAGES_DIR / "org.osbuild.hostname.meta.json").read_text())
    schema = {"type": "object", **meta["schema"]}
    assert jsonschema.Draft4Validator(schema).is_valid({"hostname": name}) == (SYSTEMD_FIRSTBOOT[name] is not None)


def _refused(custom: dict) -> BlueprintError:
    bp = Blueprint.from_dict({"name": "x", "version": "0.0.1", "customizations": custom})
    with pytest.raises(BlueprintError) as exc:
        bp.validate()
    return exc.value


REFUSED = [
    ({"hostname": "-bad host-"}, "customizations.hostname"),
    ({"kernel": {"append": "quiet\nmenuentry evil"}}, "customizations.kernel.append"),
    ({"kernel": {"name": "linux image"}}, "customizations.kernel.name"),
    ({"user": [{"name": "a", "description": "A: B"}]}, "customizations.user[0].description"),
    ({"user": [{"name": "a", "description": "A\nroot::0:0::/:/bin/sh"}]}, "customizations.user[0].description"),
    ({"user": [{"name": "a", "home": "home/a"}]}, "customizations.user[0].home"),
    ({"user": [{"name": "a", "shell": "bash"}]}, "customizations.user[0].shell"),
    ({"user": [{"name": "a", "shell": "/bin/sh:x"}]}, "customizations.user[0].shell"),
    ({"user": [{"name": "a", "groups": ["wheel", "bad group"]}]}, "customizations.user[0].groups[1]"),
    ({"user": [{"name": "a", "expiredate": -5}]}, "customizations.user[0].expiredate"),
    ({"timezone": {"timezone": "../../etc/shadow"}}, "customizations.timezone.timezone"),
    ({"timezone": {"timezone": "Europe/Berlin\n"}}, "customizations.timezone.timezone"),
    ({"timezone": {"ntpservers": ["a b"]}}, "customizations.timezone.ntpservers[0]"),
    ({"locale": {"languages": ["en_US.UTF-8", "de DE"]}}, "customizations.locale.languages[1]"),
    ({"locale": {"keyboard": 'us"\nXKBOPTIONS="x'}}, "customizations.locale.keyboard"),
    ({"services": {"enabled": ["../x.service"]}}, "customizations.services.enabled[0]"),
    ({"services": {"disabled": ["a b"]}}, "customizations.services.disabled[0]"),
    ({"services": {"masked": ["x\n"]}}, "customizations.services.masked[0]"),
    ({"firewall": {"services": {"enabled": ["ssh http"]}}}, "customizations.firewall.services.enabled[0]"),
    ({"firewall": {"zones": [{"name": "my zone"}]}}, "customizations.firewall.zones[0].name"),
    ({"firewall": {"zones": [{"name": "trusted", "sources": ["10.0.0.0/8 x"]}]}},
     "customizations.firewall.zones[0].sources[0]"),
    ({"firewall": {"ports": ["22/tcp"]}}, "customizations.firewall.ports[0]"),
]


@pytest.mark.parametrize(("custom", "field"), REFUSED, ids=[f for _, f in REFUSED])
def test_refusal_names_the_field(custom: dict, field: str) -> None:
    err = _refused(custom)
    assert err.field == field
    assert err.message.startswith(field) or field.startswith("customizations.firewall.ports"), err.message


def test_what_the_tools_take_passes() -> None:
    bp = Blueprint.from_dict({"name": "x", "version": "0.0.1", "customizations": {
        "hostname": "web-01.example.org.", "kernel": {"name": "linux-image-cloud-amd64", "append": "quiet console=ttyS0"},
        "user": [{"name": "a", "description": "Alice Doe,Room 1,+49 30 1234,,", "home": "/home/a", "shell": "/bin/bash",
                  "groups": ["wheel", "sudo"], "expiredate": -1}],
        "timezone": {"timezone": "America/Argentina/Buenos_Aires", "ntpservers": ["0.pool.ntp.org", "[2001:db8::1]",
                                                                                "192.0.2.1"]},
        "locale": {"languages": ["sr_RS.UTF-8@latin", "C.UTF-8"], "keyboard": "de-latin1-nodeadkeys"},
        "services": {"enabled": ["getty@ttyS0.service", "sshd"], "masked": ["dev-disk-by\\x2dlabel-x.swap"]},
        "firewall": {"ports": ["22:tcp", "60000-60010:udp"], "services": {"enabled": ["ssh"]},
                     "zones": [{"name": "trusted", "sources": ["10.0.0.0/8", "ipset:blocked"]}]},
    }})
    assert bp.validate() == []


def test_compose_start_applies_the_blueprint_checks() -> None:
    """manifest.validate_for (compose start, `osbuildd build`, `osbuildd manifest`) runs them, for a
    Blueprint and for a plain dict alike."""
    d = distro.get("debian-12")
    it = d.arch("x86_64").image_type("tar")
    raw = {"name": "x", "version": "0.0.1", "customizations": {"hostname": "-bad host-"}}
    for bp in (raw, Blueprint.from_dict(raw)):
        with pytest.raises(BlueprintError) as exc:
            manifest.validate_for(d, it, bp)
        assert exc.value.field == "customizations.hostname"


@pytest.mark.parametrize(("name", "type_"), [("centos-9", "qcow2"), ("fedora-43", "tar")])
def test_rpm_manifest_passes_description_to_users_stage(name: str, type_: str) -> None:
    """RPM manifests: the description is org.osbuild.users's ``description``, as upstream's."""
    from tests.manifest.helpers import synthetic_depsolve

    d = distro.get(name)
    it = d.arch("x86_64").image_type(type_)
    bp = Blueprint.from_dict({"name": "x", "version": "0.0.1", "customizations": {
        "user": [{"name": "alice", "description": "Alice H3"}, {"name": "bob"}]}})
    m = manifest.generate(d, "x86_64", it, bp, synthetic_depsolve(manifest.package_sets(d, "x86_64", it, bp)), 0)
    stages = [s for p in m.manifest["pipelines"] for s in p["stages"] if s["type"] == "org.osbuild.users"]
    assert stages[0]["options"]["users"] == {"alice": {"description": "Alice H3"}, "bob": {}}


def test_debian_users_stage_has_description() -> None:
    users = cz.users_stage({"user": [{"name": "alice", "description": "Alice H3"}]}, random.Random(0))
    assert users == {"type": "org.osbuild.users", "options": {"users": {"alice": {"description": "Alice H3"}}}}


DEBIAN_REFUSED = [
    ({"fips": True}, "customizations.fips"),
    ({"installation_device": "/dev/sda"}, "customizations.installation_device"),
    ({"partitioning_mode": "lvm"}, "customizations.partitioning_mode"),
    ({"disk": {"partitions": [{"type": "plain", "mountpoint": "/data", "minsize": "1 GiB", "fs_type": "ext4"}]}},
     "customizations.disk"),
    ({"fdo": {"manufacturing_server_url": "http://fdo.example.org"}}, "customizations.fdo"),
    ({"openscap": {"profile_id": "xccdf_org.ssgproject.content_profile_cis"}}, "customizations.openscap"),
    ({"ignition": {"firstboot": {"url": "http://ign.example.org"}}}, "customizations.ignition"),
    ({"installer": {"unattended": True}}, "customizations.installer"),
    ({"rpm": {"import_keys": {"files": ["/etc/pki/rpm-gpg/x"]}}}, "customizations.rpm"),
    ({"rhsm": {"config": {"dnf_plugins": {"product_id": {"enabled": True}}}}}, "customizations.rhsm"),
    ({"containers-storage": {"destination-path": "/var/lib/c"}}, "customizations.containers-storage"),
    ({"firstboot": {"type": "custom", "custom_contents": "echo hi"}}, "customizations.firstboot"),
    ({"dnf": {"config": {"set_releasever": True}}}, "customizations.dnf"),
    ({"iso": {"volume_id": "X"}}, "customizations.iso"),
    ({"sshd": {"password_authentication": False}}, "customizations.sshd"),
    ({"files": [{"path": "/etc/x", "uri": "https://example.org/x"}]}, "customizations.files[0].uri"),
]
_REPO = {"id": "x", "baseurls": ["http://deb.example.org/debian"]}
DEBIAN_REPO_REFUSED = [({**_REPO, key: value}, f"customizations.repositories[0].{key}") for key, value in (
    ("priority", 10), ("repo_gpgcheck", True), ("module_hotfixes", True), ("sslverify", False),
    ("gpgcheck", False), ("install_from", True),
    ("gpgkeys", ["/usr/share/keyrings/a.gpg", "/usr/share/keyrings/b.gpg"]),
    ("gpgkeys", ["https://example.org/key.asc"]))] + [
    ({"id": "x", "metalink": "https://example.org/metalink"}, "customizations.repositories[0].baseurls")]


@pytest.mark.parametrize(("custom", "field"), DEBIAN_REFUSED + [({"repositories": [r]}, f)
                                                               for r, f in DEBIAN_REPO_REFUSED],
                         ids=[f for _, f in DEBIAN_REFUSED] + [f"repo-{i}" for i in range(len(DEBIAN_REPO_REFUSED))])
def test_debian_refuses_what_it_cannot_honour(custom: dict, field: str) -> None:
    """What a Debian image cannot carry is refused at compose start, by field (never silently dropped)."""
    d = distro.get("debian-12")
    bp = Blueprint.from_dict({"name": "x", "version": "0.0.1", "customizations": custom})
    with pytest.raises(BlueprintError) as exc:
        manifest.validate_for(d, d.arch("x86_64").image_type("qcow2"), bp)
    assert exc.value.field == field, exc.value.message


def test_debian_repository_that_maps_passes() -> None:
    d = distro.get("debian-12")
    repo = {**_REPO, "name": "X", "filename": "extra.repo", "enabled": False, "gpgcheck": True,
            "sslverify": True, "gpgkeys": ["/usr/share/keyrings/debian-archive-keyring.gpg"]}
    bp = Blueprint.from_dict({"name": "x", "version": "0.0.1", "customizations": {"repositories": [repo]}})
    manifest.validate_for(d, d.arch("x86_64").image_type("qcow2"), bp)
    src = cz.repositories_stages(cz.customizations(bp), "debian", "bookworm", cz.InlineFiles())[0]
    assert src["options"]["sources"] == [{"filename": "extra.sources", "uris": repo["baseurls"],
                                          "suites": ["bookworm"], "components": ["main"],
                                          "signed_by": repo["gpgkeys"][0], "enabled": False}]


def test_debian_kernel_name_replaces_the_kernel_package() -> None:
    d = distro.get("debian-12")
    it = d.arch("x86_64").image_type("qcow2")
    bp = {"name": "x", "version": "0.0.1", "customizations": {"kernel": {"name": "linux-image-cloud-amd64"}}}
    include = manifest.package_sets(d, "x86_64", it, bp)["os"].include
    assert "linux-image-cloud-amd64" in include and "linux-image-amd64" not in include
    bp["customizations"]["kernel"]["name"] = "Linux_Image"
    with pytest.raises(BlueprintError) as exc:
        manifest.validate_for(d, it, bp)
    assert exc.value.field == "customizations.kernel.name"
