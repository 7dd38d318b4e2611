"""dnf solver against a real RPM repository built in the test (rpmbuild + createrepo_c)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from osbuildd import depsolve, distro
from osbuildd.depsolve import DepsolveError, PackageSetRequest
from osbuildd.distro import Repository, repocheck

from .rpmrepo import build_repo


@pytest.fixture(scope="module")
def local_repo(tmp_path_factory: pytest.TempPathFactory) -> Repository:
    path = build_repo(tmp_path_factory.mktemp("rpmrepo"))
    repocheck.allow_local_dir(str(path))   # file: repositories only from allowed dirs ([builder] local_repo_dirs)
    return Repository(id="local", name="local test repo", baseurl=[f"file://{path}"])


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "depsolve"


FEDORA = distro.get("fedora-43")


async def test_resolves_dependencies_and_pins(local_repo: Repository, cache: Path) -> None:
    res = await depsolve.depsolve(FEDORA, "x86_64", {"os": PackageSetRequest(include=["osbd-app"],
                                                                             repositories=[local_repo])}, cache)
    by_name = {p.name: p for p in res["os"]}
    assert set(by_name) == {"osbd-app", "osbd-lib", "osbd-base"}
    assert by_name["osbd-lib"].version == "2.0"          # "Requires: osbd-lib >= 2.0" picks the new one
    app = by_name["osbd-app"]
    assert (app.epoch, app.version, app.release, app.arch, app.repo_id) == (0, "1.2", "3", "noarch", "local")
    # the checksum is the file's real sha256 and the URL points at it
    file = Path(app.url.removeprefix("file://"))
    data = await asyncio.to_thread(file.read_bytes)
    assert app.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
    assert app.size == len(data)
    assert await asyncio.to_thread((cache / "dnf").is_dir)   # metadata cached under the cache dir


async def test_several_sets_and_version_pins(local_repo: Repository, cache: Path) -> None:
    res = await depsolve.depsolve(FEDORA, "x86_64", {
        "build": PackageSetRequest(include=["osbd-base"], repositories=[local_repo]),
        "os": PackageSetRequest(include=["osbd-lib-1.0"], repositories=[local_repo]),
    }, cache)
    assert [p.name for p in res["build"]] == ["osbd-base"]
    assert [(p.name, p.version) for p in res["os"]] == [("osbd-lib", "1.0")]


async def test_exclude(local_repo: Repository, cache: Path) -> None:
    with pytest.raises(DepsolveError) as exc:
        await depsolve.depsolve(FEDORA, "x86_64", {"os": PackageSetRequest(
            include=["osbd-app"], exclude=["osbd-base"], repositories=[local_repo])}, cache)
    assert exc.value.problem == "conflict"
    assert "osbd-base" in str(exc.value)


async def test_unknown_package_is_named(local_repo: Repository, cache: Path) -> None:
    with pytest.raises(DepsolveError) as exc:
        await depsolve.depsolve(FEDORA, "x86_64", {"os": PackageSetRequest(
            include=["osbd-base", "osbd-no-such-thing"], repositories=[local_repo])}, cache)
    assert exc.value.problem == "not-found"
    assert exc.value.package == "osbd-no-such-thing"
    assert "osbd-no-such-thing" in str(exc.value)


async def test_conflict_and_missing_dependency(local_repo: Repository, cache: Path) -> None:
    with pytest.raises(DepsolveError) as exc:
        await depsolve.depsolve(FEDORA, "x86_64", {"os": PackageSetRequest(
            include=["osbd-app", "osbd-tool"], repositories=[local_repo])}, cache)
    assert exc.value.problem == "conflict"
    assert "osbd-tool" in str(exc.value) and "osbd-app" in str(exc.value)
    with pytest.raises(DepsolveError) as exc2:
        await depsolve.depsolve(FEDORA, "x86_64", {"os": PackageSetRequest(
            include=["osbd-broken"], repositories=[local_repo])}, cache)
    assert "osbd-nowhere" in str(exc2.value)
    assert exc2.value.package.startswith("osbd-broken")


async def test_unreachable_repository_is_named(tmp_path: Path, cache: Path) -> None:
    repocheck.allow_local_dir(str(tmp_path))
    gone = Repository(id="gone-repo", baseurl=[f"file://{tmp_path}/missing"])
    with pytest.raises(DepsolveError) as exc:
        await depsolve.depsolve(FEDORA, "x86_64", {"os": PackageSetRequest(include=["bash"],
                                                                           repositories=[gone])}, cache)
    assert exc.value.problem == "repository"
    assert exc.value.repository == "gone-repo"
    assert "gone-repo" in str(exc.value)


async def test_search_and_list(local_repo: Repository, cache: Path) -> None:
    found = await depsolve.search(FEDORA, "x86_64", [local_repo], ["osbd-l*"], cache)
    assert [(p.name, p.version, p.summary) for p in found] == [("osbd-lib", "2.0", "library, new")]
    assert found[0].license == "MIT" and found[0].build_time.endswith("Z")
    everything = await depsolve.search(FEDORA, "x86_64", [local_repo], [], cache)
    assert [p.name for p in everything] == ["osbd-app", "osbd-base", "osbd-broken", "osbd-lib", "osbd-tool"]
    base = next(p for p in everything if p.name == "osbd-base")
    assert base.homepage == "https://example.com/base"
    assert await depsolve.search(FEDORA, "x86_64", [local_repo], ["nothing-like-this"], cache) == []


async def test_unknown_arch_fails_before_solving(local_repo: Repository, cache: Path) -> None:
    with pytest.raises(distro.UnknownArch):
        await depsolve.depsolve(FEDORA, "s390x", {"os": PackageSetRequest(include=["x"])}, cache)
