"""Package shapes of the Weldr API (rpmmd/weldrtypes) built from osbuildd's depsolve results."""

from __future__ import annotations

from typing import Any

from osbuildd.api.weldr.context import WeldrContext
from osbuildd.depsolve import PackageInfo, PackageSpec
from osbuildd.depsolve.debversion import weldr_evr
from osbuildd.distro import Distro, Repository
from osbuildd.distro.sourcestore import SourceConfig


def depsolved(p: PackageSpec) -> dict[str, Any]:
    """DepsolvedPackageInfo: ``{"name","epoch","version","release","arch","checksum"?,...}``
    (a Debian version split into upstream's fields: see osbuildd.depsolve.debversion)."""
    epoch, version, release = weldr_evr(p)
    out: dict[str, Any] = {"name": p.name, "epoch": epoch, "version": version, "release": release, "arch": p.arch}
    if getattr(p, "checksum", ""):
        out["checksum"] = p.checksum
    if getattr(p, "check_gpg", False):
        out["check_gpg"] = True
    if getattr(p, "url", ""):
        out["remote_location"] = p.url
    if getattr(p, "repo_id", ""):
        out["repo_id"] = p.repo_id
    return out


def _build(p: PackageInfo) -> dict[str, Any]:
    epoch, version, release = weldr_evr(p)
    return {
        "arch": getattr(p, "arch", ""), "build_time": getattr(p, "build_time", "") or "",
        "epoch": epoch, "release": release,
        "source": {"license": getattr(p, "license", ""), "version": version,
                   "source_ref": getattr(p, "source_ref", "") or "SOURCE_REF", "metadata": {}},
        "changelog": "CHANGELOG_NEEDED", "build_config_ref": "BUILD_CONFIG_REF", "build_env_ref": "BUILD_ENV_REF",
        "metadata": {},
    }


def package_infos(found: list[PackageInfo]) -> list[dict[str, Any]]:
    """PackageInfo list: one entry per name (sorted) holding every build found for it."""
    by_name: dict[str, dict[str, Any]] = {}
    for p in found:
        entry = by_name.get(p.name)
        if entry is None:
            entry = by_name[p.name] = {
                "name": p.name, "summary": getattr(p, "summary", ""), "description": getattr(p, "description", ""),
                "homepage": getattr(p, "homepage", ""), "upstream_vcs": "UPSTREAM_VCS", "builds": [],
            }
        builds = getattr(p, "builds", None)
        if builds:
            entry["builds"].extend(builds)
        else:
            entry["builds"].append(_build(p))
    return [by_name[n] for n in sorted(by_name)]


def user_source_repo(key: str, cfg: SourceConfig, family: str) -> Repository | None:
    """A user source as a depsolve Repository, or None when its type does not fit the family."""
    if family == "debian" and cfg.type == "deb":
        return Repository(id=key, name=cfg.name, baseurl=[cfg.url], suite=cfg.suite,
                          components=list(cfg.components) or ["main"], signed_by=cfg.signed_by or None,
                          check_gpg=cfg.check_gpg, sslverify=cfg.check_ssl)
    if family != "rpm" or not cfg.type.startswith("yum-"):
        return None
    return Repository(
        id=key, name=cfg.name, baseurl=[cfg.url] if cfg.type == "yum-baseurl" else None,
        mirrorlist=cfg.url if cfg.type == "yum-mirrorlist" else None,
        metalink=cfg.url if cfg.type == "yum-metalink" else None, gpgkeys=list(cfg.gpgkeys),
        check_gpg=cfg.check_gpg, check_repogpg=cfg.check_repogpg, sslverify=cfg.check_ssl,
    )


async def repositories(c: WeldrContext, distro: Distro, arch: str) -> list[Repository]:
    """System repositories of distro/arch plus the user sources that apply to that distro."""
    repos = c.system_repos(distro, arch)
    for key, cfg in await c.sources.list():
        if cfg.distros and distro.name not in cfg.distros:
            continue
        repo = user_source_repo(key, cfg, distro.family)
        if repo is not None:
            repos.append(repo)
    return repos
