"""``POST /depsolve/blueprint`` and ``POST /search/packages`` on the real daemon's Cloud API (unix
listener), against the Debian mirror (the run's shared apt cache). Upstream's recordings of these two
(084, 085) are timeouts (its host had no depsolver), so the answers are checked against the spec's
shapes and against what Weldr answers for the same question on the same daemon."""

from __future__ import annotations

from pathlib import Path

import pytest

from .cloud_daemon import CLOUD, Daemon, cloud_daemon, conforms, error_id

DEBIAN = {"distribution": "debian-12", "architecture": "x86_64"}


@pytest.fixture
async def daemon(repo_root: Path, tmp_path: Path, shared_state_dir: Path):
    async with cloud_daemon(repo_root, tmp_path, shared_state_dir) as d:
        yield d


async def test_depsolve_blueprint(daemon: Daemon) -> None:
    d = daemon
    r = await d.cloud.post(f"{CLOUD}/depsolve/blueprint", {**DEBIAN, "blueprint": {"name": "x", "packages": [{"name": "tmux"}]}})
    assert r.status == 200, r.body
    packages = r.json()["packages"]
    conforms(r.json(), "DepsolveResponse")
    assert list(r.json()) == ["packages"]
    for p in packages:
        assert {"type", "name", "version", "release", "arch", "sigmd5", "checksum"} <= set(p)
        assert p["type"] == "deb" and p["checksum"].startswith("sha256:") and p["arch"] in ("amd64", "all")
        assert "epoch" not in p or int(p["epoch"]) > 0
    # what Weldr's projects/depsolve resolves for the same package on the same daemon
    weldr = (await d.weldr.get("/api/v1/projects/depsolve/tmux?distro=debian-12&arch=x86_64")).json()["projects"]
    assert {(p["name"], p["version"], p["release"]) for p in packages} == \
        {(p["name"], p["version"], p["release"]) for p in weldr}
    assert "tmux" in {p["name"] for p in packages}

    # with an image type: the image's whole "os" package set (kernel, boot loader, ...)
    r = await d.cloud.post(f"{CLOUD}/depsolve/blueprint", {**DEBIAN, "image_type": "guest-image",
                                                           "blueprint": {"name": "x", "packages": [{"name": "tmux"}]}})
    assert r.status == 200, r.body
    names = {p["name"] for p in r.json()["packages"]}
    assert {"tmux", "linux-image-amd64"} <= names and len(names) > len(packages)

    # the request's own repository: a mirror of the distro's archive (its suite and keyring)
    r = await d.cloud.post(f"{CLOUD}/depsolve/blueprint", {
        **DEBIAN, "repositories": [{"baseurl": "http://deb.debian.org/debian"}],
        "blueprint": {"name": "x", "packages": [{"name": "tmux"}]}})
    assert r.status == 200, r.body
    assert "tmux" in {p["name"] for p in r.json()["packages"]}

    # an empty blueprint depsolves to nothing
    r = await d.cloud.post(f"{CLOUD}/depsolve/blueprint", {**DEBIAN, "blueprint": {"name": "x"}})
    assert r.status == 200 and r.json() == {"packages": []}


async def test_depsolve_refusals(daemon: Daemon) -> None:
    d = daemon
    bp = {"name": "x", "packages": [{"name": "tmux"}]}
    path = f"{CLOUD}/depsolve/blueprint"
    r = await d.cloud.post(path, {**DEBIAN, "blueprint": {"name": "x", "packages": [{"name": "no-such-package-xyz"}]}})
    assert r.status == 400 and error_id(r) == "8"
    assert r.json()["reason"] == "Failed to depsolve packages" and "no-such-package-xyz" in r.json()["details"]
    r = await d.cloud.post(path, {**DEBIAN, "distribution": "nope-1", "blueprint": bp})
    assert r.status == 400 and error_id(r) == "4"
    r = await d.cloud.post(path, {**DEBIAN, "architecture": "riscv128", "blueprint": bp})
    assert r.status == 400 and error_id(r) == "5"
    r = await d.cloud.post(path, {**DEBIAN, "image_type": "edge-commit", "blueprint": bp})
    assert r.status == 400 and error_id(r) == "6"
    r = await d.cloud.post(path, {**DEBIAN, "blueprint": {**bp, "distro": "debian-13"}})
    assert r.status == 400 and error_id(r) == "40"
    r = await d.cloud.post(path, {**DEBIAN, "repositories": [{"rhsm": False}], "blueprint": bp})
    assert r.status == 400 and error_id(r) == "7"


async def test_search_packages(daemon: Daemon) -> None:
    d = daemon
    path = f"{CLOUD}/search/packages"
    r = await d.cloud.post(path, {**DEBIAN, "packages": ["tmux", "libevent-core*"]})
    assert r.status == 200, r.body
    conforms(r.json(), "SearchPackagesResponse")
    found = {p["name"]: p for p in r.json()["packages"]}
    assert "tmux" in found and any(n.startswith("libevent-core") for n in found)
    assert all(n == "tmux" or n.startswith("libevent-core") for n in found)
    tmux = found["tmux"]
    assert {"name", "version", "release", "arch", "summary", "description"} <= set(tmux)
    assert tmux["arch"] == "amd64" and tmux["summary"]
    # Weldr's projects/info for the same package agrees on the version
    info = (await d.weldr.get("/api/v1/projects/info/tmux?distro=debian-12&arch=x86_64")).json()["projects"][0]
    build = info["builds"][0]
    assert (tmux["version"], tmux["release"]) == (build["source"]["version"], build["release"])

    r = await d.cloud.post(path, {**DEBIAN, "packages": ["no-such-package-xyz"]})
    assert r.status == 200 and r.json() == {"packages": []}
    r = await d.cloud.post(path, {**DEBIAN, "distribution": "nope-1", "packages": ["tmux"]})
    assert r.status == 400 and error_id(r) == "4"
    r = await d.cloud.post(path, {**DEBIAN, "architecture": "riscv128", "packages": ["tmux"]})
    assert r.status == 400 and error_id(r) == "5"
