"""apt depsolve against the real Debian mirror (Debian 12 and 13), errors by name, search."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from osbuildd import distro
from osbuildd.depsolve import DepsolveError, PackageSetRequest, depsolve, search
from osbuildd.distro import Repository


@pytest.fixture(scope="module")
def cache(shared_state_dir: Path) -> Path:
    return shared_state_dir / "cache" / "depsolve"


@pytest.mark.parametrize("name,kernel_re", [("debian-12", r"^6\.1\."), ("debian-13", r"^6\.(1[2-9]|[2-9]\d)\.")])
async def test_depsolve_real_sets(cache: Path, name: str, kernel_re: str) -> None:
    d = distro.get(name)
    sets = {"os": PackageSetRequest(include=["linux-image-amd64", "openssh-server", "systemd-sysv", "tmux"])}
    got = (await depsolve(d, "x86_64", sets, cache))["os"]
    by_name = {p.name: p for p in got}
    # the required base (Essential + Priority: required) comes along without being asked for
    for essential in ("dpkg", "bash", "coreutils", "base-files", "libc6", "apt"):
        assert essential in by_name, essential
    for wanted in ("openssh-server", "tmux", "systemd", "linux-image-amd64"):
        assert wanted in by_name
    kernel = [p for p in got if p.name.startswith("linux-image-") and p.name != "linux-image-amd64"]
    assert kernel and re.match(kernel_re, kernel[0].version), kernel
    for p in got:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", p.checksum)
        assert p.url.startswith("http://") and p.url.endswith(".deb")
        assert p.size > 0 and p.arch in ("amd64", "all") and p.release   # Debian revision, "0" when native
        # the exact version apt chose is kept (the pool file name carries it without the epoch)
        assert p.evr() == p.deb_version
        assert f"_{p.deb_version.split(':', 1)[-1]}_" in unquote(p.url)
        assert p.repo_id in {r.id for r in d.arch("x86_64").repositories}
    assert len(by_name) == len(got)  # one version per package


async def test_warm_depsolve_is_fast_and_stable(cache: Path) -> None:
    d = distro.get("debian-12")
    sets = {"os": PackageSetRequest(include=["openssh-server"])}
    first = await depsolve(d, "x86_64", sets, cache)
    t = time.monotonic()
    second = await depsolve(d, "x86_64", sets, cache)
    elapsed = time.monotonic() - t
    assert first == second
    assert elapsed < 10, "warm depsolve should not download indexes again"


async def test_version_glob(cache: Path) -> None:
    d = distro.get("debian-12")
    got = (await depsolve(d, "x86_64", {"os": PackageSetRequest(include=["tmux=3.3*"])}, cache))["os"]
    tmux = next(p for p in got if p.name == "tmux")
    assert tmux.version.startswith("3.3")
    with pytest.raises(DepsolveError) as err:
        await depsolve(d, "x86_64", {"os": PackageSetRequest(include=["tmux=0.1*"])}, cache)
    assert err.value.problem == "not-found" and err.value.package == "tmux" and "tmux" in str(err.value)


async def test_unknown_package_is_named(cache: Path) -> None:
    d = distro.get("debian-12")
    with pytest.raises(DepsolveError) as err:
        await depsolve(d, "x86_64", {"os": PackageSetRequest(include=["tmux", "no-such-package-h3"])}, cache)
    assert err.value.problem == "not-found"
    assert err.value.package == "no-such-package-h3"
    assert "no-such-package-h3" in str(err.value)


async def test_conflict_is_reported(cache: Path) -> None:
    d = distro.get("debian-12")
    # systemd-sysv and sysvinit-core both provide /sbin/init and conflict
    with pytest.raises(DepsolveError) as err:
        await depsolve(d, "x86_64", {"os": PackageSetRequest(include=["systemd-sysv", "sysvinit-core"])}, cache)
    assert err.value.problem == "conflict"
    assert "sysvinit-core" in str(err.value) or "systemd-sysv" in str(err.value)


async def test_exclude_forbids_a_dependency(cache: Path) -> None:
    d = distro.get("debian-12")
    with pytest.raises(DepsolveError) as err:
        await depsolve(d, "x86_64", {"os": PackageSetRequest(include=["openssh-server"],
                                                               exclude=["openssh-client"])}, cache)
    assert err.value.problem == "conflict"


async def test_unreachable_repository_is_named(cache: Path, tmp_path: Path) -> None:
    d = distro.get("debian-12")
    bad = Repository(id="nowhere", baseurl=["http://127.0.0.1:9/debian"], suite="bookworm", components=["main"])
    with pytest.raises(DepsolveError) as err:
        await depsolve(d, "x86_64", {"os": PackageSetRequest(include=["tmux"], repositories=[bad])}, tmp_path)
    assert err.value.problem == "repository"
    assert err.value.repository == "nowhere"


async def test_bad_signature_is_refused(tmp_path: Path) -> None:
    """A keyring that did not sign the Release file: apt refuses the repository."""
    d = distro.get("debian-12")
    empty = tmp_path / "empty.gpg"
    empty.write_bytes(b"")
    repo = Repository(id="unsigned", baseurl=["http://deb.debian.org/debian"], suite="bookworm",
                      components=["main"], signed_by=str(empty))
    with pytest.raises(DepsolveError) as err:
        await depsolve(d, "x86_64", {"os": PackageSetRequest(include=["tmux"], repositories=[repo])}, tmp_path)
    assert err.value.problem == "repository"


async def test_arm64_depsolve(cache: Path) -> None:
    d = distro.get("debian-12")
    got = (await depsolve(d, "aarch64", {"os": PackageSetRequest(include=["linux-image-arm64"])}, cache))["os"]
    assert {p.arch for p in got} <= {"arm64", "all"}
    assert any(p.name == "linux-image-arm64" for p in got)


async def test_search(cache: Path) -> None:
    d = distro.get("debian-12")
    hits = await search(d, "x86_64", [], ["tmux", "openssh-s*"], cache)
    names = [h.name for h in hits]
    assert names == sorted(names) and "tmux" in names and "openssh-server" in names
    tmux = next(h for h in hits if h.name == "tmux")
    assert tmux.summary and tmux.homepage.startswith("http") and tmux.version.startswith("3.3")
    everything = await search(d, "x86_64", [], [], cache)
    assert len(everything) > 30000
    assert not await search(d, "x86_64", [], ["no-such-package-h3*"], cache)


async def test_frozen_blueprint_through_the_compose_package_sets(cache: Path) -> None:
    """What compose start depsolves: the frozen blueprint's ``name=[epoch:]version-release.arch``
    pins (manifest/debian.py) give exactly the frozen packages; RPM-style ``name-version`` too."""
    from osbuildd.blueprint.freeze import evra, freeze
    from osbuildd.blueprint.model import Blueprint
    from osbuildd.manifest import debian as deb_manifest

    d = distro.get("debian-12")
    bp = Blueprint.from_dict({"name": "f", "version": "0.0.1", "packages": [
        {"name": "tmux"}, {"name": "bsdutils"}, {"name": "adduser"}]})
    first = (await depsolve(d, "x86_64", {"p": PackageSetRequest(include=bp.package_specs())}, cache))["p"]
    frozen = freeze(bp, first)
    pins = {p.name: p.version for p in frozen.packages}
    assert re.fullmatch(r"3\.3a-3\S*\.amd64", pins["tmux"]) and re.fullmatch(r"3\.134[^-]*-0\.all", pins["adduser"])
    it = d.arch("x86_64").image_type("tar")
    sets = deb_manifest.package_sets(d, "x86_64", it, frozen)
    assert f"tmux={pins['tmux']}" in sets["os"].include
    got = {p.name: p for p in (await depsolve(d, "x86_64", sets, cache))["os"]}
    assert {n: evra(got[n]) for n in pins} == pins
    rpm_style = {p.name: p for p in (await depsolve(d, "x86_64", {"p": PackageSetRequest(
        include=frozen.package_specs())}, cache))["p"]}
    assert {n: evra(rpm_style[n]) for n in pins} == pins
    assert rpm_style["bsdutils"].deb_version == got["bsdutils"].deb_version
    assert rpm_style["bsdutils"].deb_version.startswith("1:2.38.1-5")
