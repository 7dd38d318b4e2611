"""Debian manifest generation: every image type validates, same inputs give the same bytes."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from testdata import upstream_schema

from osbuildd import distro
from osbuildd import manifest as mf
from osbuildd.blueprint.errors import BlueprintError
from osbuildd.depsolve import PackageSpec, depsolve
from osbuildd.manifest import debian
from osbuildd.manifest.schema import Validator

from .blueprints import FULL, SMALL

TYPES = ["tar", "container", "qcow2", "raw", "ami", "vhd", "gce", "vmdk"]
NON_BOOTABLE = {"tar", "container"}


def bp_for(t: str) -> dict[str, Any]:
    if t in NON_BOOTABLE:
        bp = copy.deepcopy(FULL)
        for k in ("kernel", "filesystem"):
            bp["customizations"].pop(k)
        return bp
    return FULL


@pytest.fixture(scope="module")
def solved(shared_state_dir: Path) -> dict[str, tuple[Any, dict[str, list[PackageSpec]]]]:
    d = distro.get("debian-12")

    async def solve_all() -> dict[str, tuple[Any, dict[str, list[PackageSpec]]]]:
        out = {}
        for t in TYPES:
            it = d.arch("x86_64").image_type(t)
            sets = mf.package_sets(d, "x86_64", it, bp_for(t))
            out[t] = (it, await depsolve(d, "x86_64", sets, shared_state_dir / "cache" / "depsolve"))
        return out

    return asyncio.run(solve_all())


@pytest.mark.parametrize("t", TYPES)
async def test_manifest_validates_and_is_deterministic(solved: Any, t: str) -> None:
    d = distro.get("debian-12")
    it, ds = solved[t]
    a = mf.generate(d, "x86_64", it, bp_for(t), ds, seed=7)
    b = mf.generate(d, "x86_64", it, bp_for(t), copy.deepcopy(ds), seed=7)
    assert json.dumps(a.manifest) == json.dumps(b.manifest)
    errors = Validator(upstream_schema).validate(a.manifest)
    assert errors == []
    names = [p["name"] for p in a.manifest["pipelines"]]
    assert names[0] == "os" and a.exports[0] in names
    assert all("build" not in p for p in a.manifest["pipelines"])  # Debian stages run on the host
    os_stages = [s["type"] for s in a.manifest["pipelines"][0]["stages"]]
    assert os_stages[0] == "org.osbuildd.debian.bootstrap" and os_stages[-1] == "org.osbuildd.debian.cleanup"
    # every depsolved package is pinned by checksum and fed to the bootstrap
    refs = a.manifest["pipelines"][0]["stages"][0]["inputs"]["packages"]["references"]
    assert set(refs) == {p.checksum for p in ds["os"]}
    assert set(a.manifest["sources"]["org.osbuild.curl"]["items"]) == set(refs)
    assert a.checkpoints == [debian.bootstrap_id(a.manifest), "os"]
    assert a.filename == it.filename
    for want in ("org.osbuild.hostname", "org.osbuild.timezone", "org.osbuild.users", "org.osbuild.groups",
                 "org.osbuildd.debian.locale", "org.osbuild.systemd", "org.osbuildd.apt.sources",
                 "org.osbuildd.debian.cacerts"):
        assert want in os_stages, want
    if t not in NON_BOOTABLE:
        for want in ("org.osbuild.fstab", "org.osbuildd.grub.config", "org.osbuildd.debian.initramfs"):
            assert want in os_stages
        assert os_stages.index("org.osbuild.fstab") < os_stages.index("org.osbuildd.debian.initramfs")
        image = next(p for p in a.manifest["pipelines"] if p["name"] == "image")
        types = [s["type"] for s in image["stages"]]
        assert types[:2] == ["org.osbuild.truncate", "org.osbuild.sfdisk"] and types[-1] == "org.osbuildd.grub.install"
        grub = image["stages"][-1]["options"]
        assert "uefi" in grub and ("bios" in grub) == (t != "gce")


def test_seed_changes_uuids_only(solved: Any) -> None:
    d = distro.get("debian-12")
    it, ds = solved["qcow2"]
    a = mf.generate(d, "x86_64", it, FULL, ds, seed=1).manifest
    b = mf.generate(d, "x86_64", it, FULL, ds, seed=2).manifest
    assert a != b
    # the bootstrap stage does not depend on the seed: its checkpoint is shared
    assert a["pipelines"][0]["stages"][0] == b["pipelines"][0]["stages"][0]


def test_customizations_in_manifest(solved: Any) -> None:
    d = distro.get("debian-12")
    it, ds = solved["qcow2"]
    m = mf.generate(d, "x86_64", it, FULL, ds, seed=3).manifest
    stages = {s["type"]: s for s in m["pipelines"][0]["stages"]}
    grub = stages["org.osbuildd.grub.config"]["options"]
    assert "h3.marker=1" in grub["kernel_opts"] and "console=ttyS0,115200n8" in grub["kernel_opts"]
    assert grub["platforms"] == ["i386-pc", "x86_64-efi"]
    assert stages["org.osbuild.hostname"]["options"] == {"hostname": "h3-host"}
    assert stages["org.osbuild.users"]["options"]["users"]["alice"]["groups"] == ["sudo", "devs"]
    fstab = stages["org.osbuild.fstab"]["options"]["filesystems"]
    assert [f["path"] for f in fstab] == ["/", "/boot/efi"]
    assert any(p.name == "tmux" and p.version.startswith("3.3") for p in ds["os"])
    assert any(p.name == "locales" for p in ds["os"])  # en_US.UTF-8 needs locale-gen


def test_package_sets_per_arch() -> None:
    d = distro.get("debian-12")
    x86 = mf.package_sets(d, "x86_64", d.arch("x86_64").image_type("qcow2"), SMALL)["os"].include
    arm = mf.package_sets(d, "aarch64", d.arch("aarch64").image_type("qcow2"), SMALL)["os"].include
    assert {"linux-image-amd64", "grub-pc-bin", "grub-efi-amd64-bin", "less"} <= set(x86)
    assert "linux-image-arm64" in arm and "grub-efi-arm64-bin" in arm and "grub-pc-bin" not in arm


def test_groups_are_refused() -> None:
    d = distro.get("debian-12")
    bp = {"name": "g", "groups": [{"name": "core"}]}
    with pytest.raises(BlueprintError) as err:
        mf.package_sets(d, "x86_64", d.arch("x86_64").image_type("qcow2"), bp)
    assert err.value.field == "groups"


def test_bad_package_name_is_refused() -> None:
    d = distro.get("debian-12")
    with pytest.raises(BlueprintError) as err:
        mf.package_sets(d, "x86_64", d.arch("x86_64").image_type("tar"),
                        {"name": "x", "packages": [{"name": "Bad_Name"}]})
    assert err.value.field == "packages[0].name"
