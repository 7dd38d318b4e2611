"""Session-wide Debian builds: each image is built once per run and checked by many tests."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from osbuildd import distro
from osbuildd import manifest as mf
from osbuildd.depsolve import PackageSetRequest, depsolve
from osbuildd.manifest import debian

from .blueprints import FULL, SMALL
from .util import engine_build

HERE = Path(__file__).parent


def pin_template(name: str, cache: Path) -> tuple[dict[str, Any], list[Any]]:
    """A hand-written manifest template with its package list pinned by the apt depsolver now."""
    tpl = json.loads((HERE / "manifests" / f"{name}.json").read_text())
    d = distro.get(tpl["distro"])
    pkgs = asyncio.run(depsolve(d, "x86_64", {"os": PackageSetRequest(include=tpl["packages"])}, cache))["os"]
    manifest = tpl["manifest"]
    boot = next(s for s in manifest["pipelines"][0]["stages"] if s["type"] == "org.osbuildd.debian.bootstrap")
    boot["inputs"]["packages"]["references"] = {p.checksum: {} for p in sorted(pkgs, key=lambda p: p.checksum)}
    manifest["sources"]["org.osbuild.curl"] = {"items": {p.checksum: {"url": p.url} for p in pkgs}}
    return manifest, pkgs


def generated(image_type: str, bp: dict[str, Any], cache: Path, seed: int = 1234,
              distro_name: str = "debian-12") -> tuple[Any, list[Any]]:
    d = distro.get(distro_name)
    it = d.arch("x86_64").image_type(image_type)
    sets = mf.package_sets(d, "x86_64", it, bp)
    solved = asyncio.run(depsolve(d, "x86_64", sets, cache))
    return mf.generate(d, "x86_64", it, bp, solved, seed), solved["os"]


class Built:
    def __init__(self, manifest: dict[str, Any], result: dict[str, Any], outdir: Path, packages: list[Any]):
        self.manifest, self.result, self.outdir, self.packages = manifest, result, outdir, packages


@pytest.fixture(scope="session")
def depsolve_cache(shared_state_dir: Path) -> Path:
    return shared_state_dir / "cache" / "depsolve"


@pytest.fixture(scope="session")
def tar_build(shared_state_dir: Path, depsolve_cache: Path, tmp_path_factory: pytest.TempPathFactory,
              require_root: None) -> Built:
    manifest, pkgs = pin_template("tar", depsolve_cache)
    out = tmp_path_factory.mktemp("tar-out")
    bootstrap = debian.bootstrap_id(manifest)
    result = engine_build(manifest, shared_state_dir / "store", out, ["archive"], [bootstrap, "os"])
    return Built(manifest, result, out, pkgs)


@pytest.fixture(scope="session")
def container_build(shared_state_dir: Path, depsolve_cache: Path, tmp_path_factory: pytest.TempPathFactory,
                    require_root: None) -> Built:
    res, pkgs = generated("container", SMALL, depsolve_cache)
    out = tmp_path_factory.mktemp("container-out")
    result = engine_build(res.manifest, shared_state_dir / "store", out, res.exports, res.checkpoints)
    return Built(res.manifest, result, out, pkgs)


def with_extra_formats(manifest: dict[str, Any]) -> dict[str, Any]:
    """The qcow2 manifest plus vpc and vmdk pipelines converting the same `image` (one os, one disk)."""
    m = copy.deepcopy(manifest)
    image_input = {"type": "org.osbuild.files", "origin": "org.osbuild.pipeline",
                   "references": {"name:image": {"file": "disk.raw"}}}
    for name, fname, fmt in (("vpc", "disk.vhd", debian.QEMU_FORMATS["vhd"]),
                             ("vmdk", "disk.vmdk", debian.QEMU_FORMATS["vmdk"])):
        m["pipelines"].append({"name": name, "stages": [{
            "type": "org.osbuild.qemu", "inputs": {"image": copy.deepcopy(image_input)},
            "options": {"filename": fname, "format": fmt}}]})
    return m


@pytest.fixture(scope="session")
def qcow2_build(shared_state_dir: Path, depsolve_cache: Path, tmp_path_factory: pytest.TempPathFactory,
                require_root: None) -> Built:
    res, pkgs = generated("qcow2", FULL, depsolve_cache)
    manifest = with_extra_formats(res.manifest)
    out = tmp_path_factory.mktemp("qcow2-out")
    result = engine_build(manifest, shared_state_dir / "store", out, ["qcow2", "vpc", "vmdk"], res.checkpoints)
    return Built(manifest, result, out, pkgs)


@pytest.fixture(scope="session")
def cloud_builds(shared_state_dir: Path, depsolve_cache: Path, tmp_path_factory: pytest.TempPathFactory,
                 require_root: None) -> dict[str, Built]:
    """ami, vhd (same package set: one bootstrap, shared through its checkpoint), gce (UEFI only),
    raw and vmdk: with qcow2, tar and container every Debian image type is built once per run."""
    out = {}
    for t in ("ami", "vhd", "gce", "raw", "vmdk"):
        res, pkgs = generated(t, FULL, depsolve_cache)
        outdir = tmp_path_factory.mktemp(f"{t}-out")
        result = engine_build(res.manifest, shared_state_dir / "store", outdir, res.exports, res.checkpoints)
        out[t] = Built(res.manifest, result, outdir, pkgs)
    return out


@pytest.fixture(scope="session")
def trixie_tar_build(shared_state_dir: Path, depsolve_cache: Path, tmp_path_factory: pytest.TempPathFactory,
                     require_root: None) -> Built:
    """A Debian 13 rootfs tarball from the generated manifest (the host is Debian 12)."""
    bp = {"name": "trixie", "packages": [{"name": "less"}],
          "customizations": {"hostname": "trixie-h3", "user": [{"name": "bob", "groups": ["users"]}]}}
    res, pkgs = generated("tar", bp, depsolve_cache, distro_name="debian-13")
    out = tmp_path_factory.mktemp("trixie-out")
    result = engine_build(res.manifest, shared_state_dir / "store", out, res.exports, res.checkpoints)
    return Built(res.manifest, result, out, pkgs)
