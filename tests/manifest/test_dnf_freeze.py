"""RPM frozen blueprints round-trip: freeze's ``[epoch:]version-release.arch`` pins, given back to
the dnf solver (as ``name-[epoch:]version-release.arch``), resolve to exactly the frozen packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from osbuildd import depsolve, distro
from osbuildd.blueprint.freeze import evra, freeze
from osbuildd.blueprint.model import Blueprint
from osbuildd.depsolve import PackageSetRequest
from osbuildd.distro import Repository, repocheck

from .rpmrepo import PACKAGES, build_repo

EXTRA = [("osbd-epoch", "1.5", "2", ["Summary: has an epoch", "Epoch: 3"]),
         ("osbd-epoch", "1.4", "9", ["Summary: has an epoch, older", "Epoch: 3"])]
FEDORA = distro.get("fedora-43")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repository:
    path = build_repo(tmp_path_factory.mktemp("rpmrepo-freeze"), PACKAGES + EXTRA)
    repocheck.allow_local_dir(str(path))
    return Repository(id="local", name="local test repo", baseurl=[f"file://{path}"])


async def _solve(repo: Repository, specs: list[str], cache: Path) -> dict[str, object]:
    res = await depsolve.depsolve(FEDORA, "x86_64", {"os": PackageSetRequest(include=specs, repositories=[repo])},
                                  cache)
    return {p.name: p for p in res["os"]}


async def test_rpm_freeze_round_trip(repo: Repository, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    bp = Blueprint.from_dict({"name": "f", "version": "0.0.1", "packages": [
        {"name": "osbd-app"}, {"name": "osbd-epoch", "version": "*"}, {"name": "osbd-l*"}]})
    first = await _solve(repo, bp.package_specs(), cache)
    frozen = freeze(bp, list(first.values()))
    pins = {p.name: p.version for p in frozen.packages}
    assert pins == {"osbd-app": "1.2-3.noarch", "osbd-epoch": "3:1.5-2.noarch", "osbd-lib": "2.0-1.noarch"}
    assert frozen.package_specs() == ["osbd-app-1.2-3.noarch", "osbd-epoch-3:1.5-2.noarch", "osbd-lib-2.0-1.noarch"]
    again = await _solve(repo, frozen.package_specs(), cache)
    assert {n: evra(again[n]) for n in pins} == pins
    assert {n: evra(p) for n, p in again.items()} == {n: evra(p) for n, p in first.items()}


async def test_rpm_frozen_older_version_is_kept(repo: Repository, tmp_path: Path) -> None:
    got = await _solve(repo, ["osbd-epoch-3:1.4-9.noarch", "osbd-lib-1.0-1.noarch"], tmp_path / "cache")
    assert (evra(got["osbd-epoch"]), evra(got["osbd-lib"])) == ("3:1.4-9.noarch", "1.0-1.noarch")
