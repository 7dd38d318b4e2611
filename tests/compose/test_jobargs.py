"""Compute jobs in both dialects (osbuildd's and upstream osbuild-composer's worker JSON): the
conversion, and real search-packages/depsolve job runs against the Debian mirror."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from osbuildd.compose import handlers, jobargs
from osbuildd.config import Config
from osbuildd.queue import errors

MIRROR = "http://deb.debian.org/debian"


@pytest.fixture
def config(tmp_path: Path, shared_state_dir: Path) -> Config:
    (tmp_path / "state").mkdir()
    os.symlink(shared_state_dir / "cache", tmp_path / "state" / "cache")   # the run's warm apt cache
    return Config.embedded(tmp_path / "state")


def test_upstream_repo_config() -> None:
    r = jobargs.repository({"id": "baseos", "baseurls": ["https://a/x", "https://b/x"], "gpgkeys": ["K"],
                            "check_gpg": True, "check_repo_gpg": False, "ignore_ssl": True,
                            "module_hotfixes": None}, "repos[0]")
    assert r.id == "baseos" and r.baseurl == ["https://a/x", "https://b/x"] and r.gpgkeys == ["K"]
    assert r.check_gpg and not r.check_repogpg and not r.sslverify
    # osbuildd's own form passes through unchanged
    mine = {"id": "d", "baseurl": [MIRROR], "suite": "bookworm", "components": ["main"]}
    assert jobargs.repository(mine, "r").to_dict() == mine
    with pytest.raises(jobargs.BadJobArgs, match=r"repos\[1\].baseurls: must be a list of strings"):
        jobargs.repository({"baseurls": "https://a"}, "repos[1]")
    with pytest.raises(jobargs.BadJobArgs, match=r"repos\[2\]: .*unexpected keyword|repos\[2\]: must be an object"):
        jobargs.repository(["x"], "repos[2]")


def test_distro_from_module_platform() -> None:
    assert jobargs.find_distro({"module_platform_id": "platform:f42", "releasever": "42"}).name == "fedora-42"
    assert jobargs.find_distro({"distro": "debian-12", "module_platform_id": "ignored"}).name == "debian-12"
    with pytest.raises(jobargs.BadJobArgs, match="module_platform_id: no distribution has module platform"):
        jobargs.find_distro({"module_platform_id": "platform:f42", "releasever": "7"})
    with pytest.raises(jobargs.BadJobArgs, match="distro: unknown distribution 'plan9'"):
        jobargs.find_distro({"distro": "plan9"})


def test_upstream_depsolve_args_converted() -> None:
    up = {"grouped_package_sets": {"build": [{"include": ["rpm"], "exclude": [], "repos": [
              {"id": "f", "baseurls": ["https://m/f42"], "check_gpg": True}]}],
          "os": [{"include": ["@core"], "exclude": ["dracut-config-rescue"], "repos": [{"baseurls": ["https://m/f42"]}]},
                 {"include": ["kernel"], "repos": []}]},
          "module_platform_id": "platform:f42", "arch": "x86_64", "releasever": "42", "sbom_type": "spdx"}
    out = jobargs.depsolve_args(up)
    assert out["distro"] == "fedora-42" and out["arch"] == "x86_64" and out["sbom_type"] == "spdx"
    assert "grouped_package_sets" not in out
    assert out["package_sets"]["build"] == [{"include": ["rpm"], "exclude": [], "repos": [
        {"id": "f", "baseurl": ["https://m/f42"], "check_gpg": True}]}]
    assert [link["include"] for link in out["package_sets"]["os"]] == [["@core"], ["kernel"]]
    with pytest.raises(jobargs.BadJobArgs, match=r"grouped_package_sets.os\[0\].include: must be a list of strings"):
        jobargs.depsolve_args({**up, "grouped_package_sets": {"os": [{"include": "kernel"}]}})
    with pytest.raises(jobargs.BadJobArgs, match="grouped_package_sets: must be a non-empty object"):
        jobargs.depsolve_args({**up, "grouped_package_sets": {}})


async def test_search_job_both_dialects(config: Config) -> None:
    repo = {"id": "debian", "baseurl": [MIRROR], "suite": "bookworm", "components": ["main"]}
    mine, err = await handlers.run_search(config, {"distro": "debian-12", "arch": "x86_64",
                                                    "repositories": [repo], "packages": ["tmu*"]})
    assert err is None, err
    names = {p["name"] for p in mine["packages"]}
    assert "tmux" in names and all(n.startswith("tmu") for n in names)
    # upstream's keys ("repos", RepoConfig "baseurls"), the distribution named as osbuildd adds it
    up, err = await handlers.run_search(config, {"distro": "debian-12", "arch": "x86_64", "packages": ["tmux"],
                                                  "repos": [{"id": "debian", "baseurls": [MIRROR],
                                                             "suite": "bookworm", "components": ["main"]}]})
    assert err is None, err
    assert [p["name"] for p in up["packages"]] == ["tmux"] and up["packages"][0]["version"]
    # no repositories given: the distribution's own
    default, err = await handlers.run_search(config, {"distro": "debian-12", "arch": "x86_64", "packages": ["tmux"]})
    assert err is None and [p["name"] for p in default["packages"]] == ["tmux"]


async def test_search_job_refusals_say_why(config: Config) -> None:
    _, err = await handlers.run_search(config, {"distro": "debian-12", "arch": "s390x", "packages": ["x"]})
    assert err is not None and err.id == errors.DNF_OTHER_ERROR and "s390x" in err.reason
    _, err = await handlers.run_search(config, {"arch": "x86_64", "packages": ["x"], "module_platform_id": "platform:nope"})
    assert err is not None and "platform:nope" in err.reason


async def test_depsolve_job_in_upstream_shape(config: Config) -> None:
    """upstream's ``grouped_package_sets``/``repos`` for a Debian set (the distribution named)."""
    args = {"distro": "debian-12", "arch": "x86_64", "grouped_package_sets": {"os": [{"include": ["tmux"], "repos": [
        {"id": "debian", "baseurls": [MIRROR], "suite": "bookworm", "components": ["main"]}]}]}}
    result, err = await handlers.run_depsolve(config, args)
    assert err is None, err
    names = {p["name"] for p in result["package_specs"]["os"]}
    assert {"tmux", "libevent-core-2.1-7"} <= names
    assert result["repo_configs"]["os"][0]["baseurl"] == [MIRROR]
