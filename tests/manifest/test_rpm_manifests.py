"""RPM manifests: every distro x image type validates against osbuild's schemas, follows the pipeline
layout of images' reference manifests, is deterministic, and carries the customizations."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from testdata import data_file

from osbuildd import distro, manifest
from osbuildd.blueprint import BlueprintError
from osbuildd.manifest import schema

from .helpers import (
    RPM_DISTROS,
    RPM_TYPES,
    SCHEMAS,
    all_customizations_raw,
    blueprint,
    supported_only,
    synthetic_depsolve,
)


def _generate(name: str, type_: str, bp: Any, seed: int = 0, size: int | None = None,
              arch: str = "x86_64") -> manifest.ManifestResult:
    d = distro.get(name)
    it = d.arch(arch).image_type(type_)
    sets = manifest.package_sets(d, arch, it, bp)
    return manifest.generate(d, arch, it, bp, synthetic_depsolve(sets, arch), seed, size)


def _stage(m: dict[str, Any], pipeline: str, type_: str) -> list[dict[str, Any]]:
    p = next(p for p in m["pipelines"] if p["name"] == pipeline)
    return [s for s in p["stages"] if s["type"] == type_]


@pytest.mark.parametrize("type_", RPM_TYPES)
@pytest.mark.parametrize("name", RPM_DISTROS)
def test_validates_empty_and_customized(name: str, type_: str) -> None:
    it = distro.get(name).arch("x86_64").image_type(type_)
    for bp in (blueprint(), blueprint(supported_only(all_customizations_raw(), it))):
        res = _generate(name, type_, bp)
        assert schema.validate(res.manifest, SCHEMAS) == []
        assert res.exports == it.exports and res.filename == it.filename
        assert res.manifest["pipelines"][0]["runner"] == distro.get(name).runner
        exported = [p["name"] for p in res.manifest["pipelines"]]
        assert it.exports[0] in exported


@pytest.mark.parametrize("name", ["fedora-43", "centos-10", "rhel-10.0"])
def test_aarch64_is_uefi_only(name: str) -> None:
    res = _generate(name, "qcow2", blueprint(), arch="aarch64")
    assert schema.validate(res.manifest, SCHEMAS) == []
    assert not _stage(res.manifest, "image", "org.osbuild.grub2.inst")
    grub = _stage(res.manifest, "os", "org.osbuild.grub2")[0]["options"]
    assert "legacy" not in grub and grub["uefi"]["vendor"]


def _reference(file: str) -> dict[str, Any]:
    return json.loads(data_file("images", "manifests", file).read_text())["manifest"]


def _types(m: dict[str, Any], pipeline: str) -> list[str]:
    return [s["type"] for s in next(p for p in m["pipelines"] if p["name"] == pipeline)["stages"]]


@pytest.mark.parametrize(("ref", "name", "type_"), [
    ("fedora_39-x86_64-qcow2-boot.json", "fedora-43", "qcow2"),
    ("fedora_39-x86_64-ami-boot.json", "fedora-43", "ami"),
    ("fedora_39-x86_64-container-boot.json", "fedora-43", "container"),
    ("centos_9-x86_64-qcow2-boot.json", "centos-9", "qcow2"),
    ("centos_9-x86_64-gce-boot.json", "centos-9", "gce"),
    ("centos_9-x86_64-tar-boot.json", "centos-9", "tar"),
    ("rhel_9-x86_64-vhd-boot.json", "rhel-9.6", "vhd"),
])
def test_follows_reference_layout(ref: str, name: str, type_: str) -> None:
    want = _reference(ref)
    got = _generate(name, type_, blueprint()).manifest
    assert [p["name"] for p in got["pipelines"]] == [p["name"] for p in want["pipelines"]]
    assert _types(got, "build") == _types(want, "build")
    for p in want["pipelines"][2:]:          # image and format pipelines: same stages, same order
        assert _types(got, p["name"]) == _types(want, p["name"]), p["name"]
    # the os pipeline: every stage we emit appears in the reference, in the reference's order
    ref_os = _types(want, "os")
    positions = [ref_os.index(t) for t in _types(got, "os") if t in ref_os]
    assert positions == sorted(positions)
    assert set(_types(got, "os")) - set(ref_os) <= {"org.osbuild.hostname", "org.osbuild.sysconfig",
                                                     "org.osbuild.systemd", "org.osbuild.keymap"}


@pytest.mark.parametrize(("ref", "name", "type_"), [
    ("centos_9-x86_64-qcow2-boot.json", "centos-9", "qcow2"),
    ("centos_9-x86_64-gce-boot.json", "centos-9", "gce"),       # UEFI-only, same table as upstream
    ("fedora_39-x86_64-qcow2-boot.json", "fedora-43", "qcow2"),
])
def test_partition_layout_matches_reference(ref: str, name: str, type_: str) -> None:
    want = _stage(_reference(ref), "image", "org.osbuild.sfdisk")[0]["options"]
    got = _stage(_generate(name, type_, blueprint()).manifest, "image", "org.osbuild.sfdisk")[0]["options"]
    strip = [{k: v for k, v in p.items() if k != "uuid"} for p in got["partitions"]]
    assert strip == [{k: v for k, v in p.items() if k != "uuid"} for p in want["partitions"]]


def test_same_inputs_same_bytes_and_seed_matters() -> None:
    bp = blueprint(supported_only(all_customizations_raw(), distro.get("fedora-43").arch("x86_64").image_type("qcow2")))
    a = json.dumps(_generate("fedora-43", "qcow2", bp, seed=7).manifest)
    b = json.dumps(_generate("fedora-43", "qcow2", bp, seed=7).manifest)
    c = json.dumps(_generate("fedora-43", "qcow2", bp, seed=8).manifest)
    assert a == b
    assert a != c


def test_sources_pin_every_package_and_rhsm_secrets() -> None:
    d = distro.get("rhel-9.6")
    it = d.arch("x86_64").image_type("qcow2")
    bp = blueprint()
    dep = synthetic_depsolve(manifest.package_sets(d, "x86_64", it, bp))
    m = manifest.generate(d, "x86_64", it, bp, dep, 0).manifest
    items = m["sources"]["org.osbuild.curl"]["items"]
    assert set(items) == {p.checksum for s in dep.values() for p in s}
    assert all(v["secrets"] == {"name": "org.osbuild.rhsm"} for v in items.values())
    refs = _stage(m, "os", "org.osbuild.rpm")[0]["inputs"]["packages"]["references"]
    assert [r["id"] for r in refs] == [p.checksum for p in dep["os"]]
    assert "org.osbuild.inline" not in m["sources"]


def test_customizations_in_manifest() -> None:
    raw = all_customizations_raw()
    it = distro.get("fedora-43").arch("x86_64").image_type("qcow2")
    m = _generate("fedora-43", "qcow2", blueprint(supported_only(raw, it))).manifest
    cmdline = _stage(m, "os", "org.osbuild.kernel-cmdline")[0]["options"]["kernel_opts"]
    assert cmdline.endswith(" debug") and it.kernel_options in cmdline
    assert _stage(m, "os", "org.osbuild.grub2")[0]["options"]["kernel_opts"] == cmdline
    assert _stage(m, "os", "org.osbuild.hostname")[0]["options"] == {"hostname": "my-host"}
    assert _stage(m, "os", "org.osbuild.timezone")[0]["options"] == {"zone": "Europe/London"}
    assert _stage(m, "os", "org.osbuild.chrony")[0]["options"] == {"servers": [{"hostname": "time.example.com"}]}
    assert _stage(m, "os", "org.osbuild.keymap")[0]["options"] == {"keymap": "dvorak"}
    users = _stage(m, "os", "org.osbuild.users")[0]["options"]["users"]
    assert users["user2"]["uid"] == 1020 and users["user2"]["password"].startswith("$6$")
    assert _stage(m, "os", "org.osbuild.groups")[0]["options"]["groups"]["wheel"] == {"gid": 4242}
    systemd = _stage(m, "os", "org.osbuild.systemd")[0]["options"]
    assert "custom.service" in systemd["enabled_services"]
    assert systemd["masked_services"] == ["nfs-server", "rpcbind", "nftables"]
    assert _stage(m, "os", "org.osbuild.firewall")[0]["options"]["ports"] == ["1337:udp", "42-48:tcp"]
    assert _stage(m, "os", "org.osbuild.yum.repos")[0]["options"]["filename"] == "example.repo"
    assert _stage(m, "os", "org.osbuild.pki.update-ca-trust")
    # files: inline sources with the blueprint's data, copied to their paths
    inline = m["sources"]["org.osbuild.inline"]["items"]
    copies = [p for s in _stage(m, "os", "org.osbuild.copy") for p in s["options"]["paths"]]
    assert any(p["to"] == "tree:///etc/custom_file.txt" for p in copies)
    for p in copies:
        checksum = p["from"].rsplit("/", 1)[1]
        assert checksum in inline
    # filesystem: every mountpoint is a partition with a file system, mounted for the copy
    fstab = {f["path"] for f in _stage(m, "os", "org.osbuild.fstab")[0]["options"]["filesystems"]}
    assert {"/home", "/home/shadowman", "/usr", "/opt", "/boot", "/boot/efi", "/"} <= fstab
    truncate = int(_stage(m, "image", "org.osbuild.truncate")[0]["options"]["size"])
    assert truncate > 12 * (1 << 30)        # grew beyond the 5 GiB default to hold the minsizes
    copy_mounts = {mt["target"] for mt in _stage(m, "image", "org.osbuild.copy")[0]["mounts"]}
    assert copy_mounts == fstab


def test_size_request_and_root_minsize() -> None:
    big = _generate("centos-9", "qcow2", blueprint(), size=20 << 30).manifest
    assert _stage(big, "image", "org.osbuild.truncate")[0]["options"]["size"] == str(20 << 30)
    raw = {"name": "fs", "version": "0.0.1",
           "customizations": {"filesystem": [{"mountpoint": "/", "minsize": "30 GiB"}]}}
    grown = _generate("centos-9", "qcow2", blueprint(raw)).manifest
    root = _stage(grown, "image", "org.osbuild.sfdisk")[0]["options"]["partitions"][-1]
    assert root["size"] * 512 >= 30 << 30


@pytest.mark.parametrize(("name", "type_", "custom", "field"), [
    ("fedora-43", "tar", {"filesystem": [{"mountpoint": "/opt", "minsize": 1 << 30}]}, "customizations.filesystem"),
    ("fedora-43", "container", {"kernel": {"append": "quiet"}}, "customizations.kernel"),
    ("debian-12", "qcow2", {"fips": True}, "customizations.fips"),
    ("centos-9", "qcow2", {"filesystem": [{"mountpoint": "/etc", "minsize": 1 << 30}]},
     "customizations.filesystem[0].mountpoint"),
    ("centos-9", "qcow2", {"directories": [{"path": "etc/relative"}]}, "customizations.directories[0].path"),
    ("centos-9", "qcow2", {"files": [{"path": "/etc/x", "mode": "99"}]}, "customizations.files[0].mode"),
    ("debian-12", "qcow2", {"repositories": [{"id": "r", "baseurls": ["http://x/debian"],
                                              "gpgkeys": ["-----BEGIN PGP PUBLIC KEY BLOCK-----"]}]},
     "customizations.repositories[0].gpgkeys"),
    ("rhel-9.6", "qcow2", {"disk": {"partitions": [{"type": "plain", "mountpoint": "/data", "minsize": "1 GiB",
                                                    "fs_type": "xfs"}]}}, "customizations.disk"),
    ("fedora-43", "qcow2", {"openscap": {"profile_id": "xccdf_org.ssgproject.content_profile_cis"}},
     "customizations.openscap"),
])
def test_customization_errors_name_the_field(name: str, type_: str, custom: dict[str, Any], field: str) -> None:
    d = distro.get(name)
    it = d.arch("x86_64").image_type(type_)
    raw = {"name": "bad", "version": "0.0.1", "customizations": custom}
    try:
        bp = blueprint(raw)
    except BlueprintError as exc:       # the blueprint model may already refuse it, by field
        assert exc.field.startswith(field.split("[")[0])
        return
    with pytest.raises(BlueprintError) as exc:
        manifest.validate_for(d, it, bp)
    assert exc.value.field == field
    with pytest.raises(BlueprintError):
        manifest.package_sets(d, "x86_64", it, bp)


def test_validator_catches_bad_stage_options() -> None:
    m = copy.deepcopy(_generate("fedora-43", "qcow2", blueprint()).manifest)
    _stage(m, "os", "org.osbuild.hostname")[0]["options"] = {"name": "wrong-key"}
    errors = schema.validate(m, SCHEMAS)
    assert errors and "org.osbuild.hostname" in errors[0]
    m2 = copy.deepcopy(_generate("fedora-43", "qcow2", blueprint()).manifest)
    m2["pipelines"][1]["stages"].append({"type": "org.osbuild.does-not-exist"})
    assert any("unknown stage" in e for e in schema.validate(m2, SCHEMAS))


def test_package_sets_carry_blueprint_packages_and_repos() -> None:
    d = distro.get("centos-9")
    raw = {"name": "p", "version": "0.0.1", "packages": [{"name": "tmux", "version": "3.*"}],
           "groups": [{"name": "core"}], "customizations": {"timezone": {"ntpservers": ["ntp.example"]}}}
    sets = manifest.package_sets(d, "x86_64", d.arch("x86_64").image_type("gce"), blueprint(raw))
    assert {"tmux-3.*", "@core", "chrony"} <= set(sets["os"].include)
    assert "google-compute-engine" in {r.id for r in sets["os"].repositories}
    qsets = manifest.package_sets(d, "x86_64", d.arch("x86_64").image_type("qcow2"), blueprint(raw))
    assert "google-compute-engine" not in {r.id for r in qsets["os"].repositories}
    assert "grub2-pc" in qsets["build"].include


def test_enabled_modules_refused() -> None:
    d = distro.get("rhel-9.6")
    raw = {"name": "m", "version": "0.0.1", "enabled_modules": [{"name": "nodejs", "stream": "20"}]}
    with pytest.raises(BlueprintError) as exc:
        manifest.validate_for(d, d.arch("x86_64").image_type("qcow2"), blueprint(raw))
    assert exc.value.field == "enabled_modules"


@pytest.mark.parametrize(("ref", "name", "type_"), [
    ("centos_9-x86_64-qcow2-boot.json", "centos-9", "qcow2"),
    ("centos_9-x86_64-tar-boot.json", "centos-9", "tar"),
    ("centos_9-x86_64-gce-boot.json", "centos-9", "gce"),
    ("rhel_9-x86_64-vhd-boot.json", "rhel-9.6", "vhd"),
    ("fedora_39-x86_64-qcow2-boot.json", "fedora-43", "qcow2"),
    ("fedora_39-x86_64-container-boot.json", "fedora-43", "container"),
])
def test_type_defaults_match_reference(ref: str, name: str, type_: str) -> None:
    want = _reference(ref)
    got = _generate(name, type_, blueprint()).manifest
    for t in ("org.osbuild.locale", "org.osbuild.timezone", "org.osbuild.keymap", "org.osbuild.sysconfig",
              "org.osbuild.hostname", "org.osbuild.systemd"):
        assert _stage(got, "os", t) == _stage(want, "os", t), t


def test_fips() -> None:
    raw = {"name": "f", "version": "0.0.1", "customizations": {"fips": True}}
    d = distro.get("rhel-9.6")
    bp = blueprint(raw)
    sets = manifest.package_sets(d, "x86_64", d.arch("x86_64").image_type("qcow2"), bp)
    assert "dracut-fips" in sets["os"].include
    m = _generate("rhel-9.6", "qcow2", bp).manifest
    assert schema.validate(m, SCHEMAS) == []
    assert _stage(m, "os", "org.osbuild.kernel-cmdline")[0]["options"]["kernel_opts"].endswith("fips=1")
    assert _stage(m, "os", "org.osbuild.update-crypto-policies")[0]["options"] == {"policy": "FIPS"}
    types = _types(m, "os")
    assert types.index("org.osbuild.dracut.conf") < types.index("org.osbuild.rpm")


def test_kernel_name_replaces_default_kernel() -> None:
    raw = {"name": "k", "version": "0.0.1", "customizations": {"kernel": {"name": "kernel-debug"}}}
    d = distro.get("centos-9")
    bp = blueprint(raw)
    sets = manifest.package_sets(d, "x86_64", d.arch("x86_64").image_type("qcow2"), bp)
    assert "kernel-debug" in sets["os"].include and "kernel" not in sets["os"].include
    it = d.arch("x86_64").image_type("qcow2")
    dep = synthetic_depsolve(sets)
    next(p for p in dep["os"] if p.name == "kernel-debug").version = "5.14.0"
    m = manifest.generate(d, "x86_64", it, bp, dep, 0).manifest
    assert _stage(m, "os", "org.osbuild.grub2")[0]["options"]["saved_entry"].endswith("-5.14.0-1.el9.x86_64")
