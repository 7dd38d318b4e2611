"""Compute jobs' arguments in both dialects: osbuildd's and upstream osbuild-composer's.

A remote ``osbuildd worker`` may take jobs from an upstream composer, whose ``depsolve`` and
``search-packages`` jobs carry upstream's JSON (``grouped_package_sets``, ``repos`` of ``RepoConfig``,
no distribution name: ``module_platform_id`` + ``releasever`` say which). osbuildd's own jobs name
the distribution and use :class:`osbuildd.distro.Repository` dicts. Everything here turns either
into osbuildd's form, raising :class:`BadJobArgs` naming the field."""

from __future__ import annotations

from typing import Any

from osbuildd import distro as distros
from osbuildd.distro import Distro, Repository


class BadJobArgs(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _strings(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise BadJobArgs(field, "must be a list of strings")
    return list(value)


def repository(raw: Any, field: str) -> Repository:
    """A repository from osbuildd's dict or upstream's ``RepoConfig`` JSON (``baseurls``,
    ``check_repo_gpg``, ``ignore_ssl``)."""
    if not isinstance(raw, dict):
        raise BadJobArgs(field, "must be an object")
    data = dict(raw)
    if "baseurls" in data:
        data["baseurl"] = _strings(data.pop("baseurls"), f"{field}.baseurls")
    elif isinstance(data.get("baseurl"), str):
        data["baseurl"] = [data["baseurl"]]
    if "check_repo_gpg" in data:
        data["check_repogpg"] = bool(data.pop("check_repo_gpg"))
    if "ignore_ssl" in data:
        data["sslverify"] = not data.pop("ignore_ssl")
    data.setdefault("id", data.get("name") or "")
    for key in ("check_gpg", "check_repogpg", "sslverify"):
        if data.get(key) is None:
            data.pop(key, None)   # upstream's *bool left unset: the default
    try:
        return Repository.from_dict(data)
    except TypeError as exc:
        raise BadJobArgs(field, str(exc)) from None


def find_distro(args: dict[str, Any]) -> Distro:
    """``args["distro"]`` (osbuildd), else the one distribution whose module platform id and
    release version match upstream's ``module_platform_id`` and ``releasever``."""
    name = args.get("distro")
    if isinstance(name, str) and name:
        try:
            return distros.get(name)
        except LookupError:
            raise BadJobArgs("distro", f"unknown distribution {name!r}") from None
    platform, release = args.get("module_platform_id"), str(args.get("releasever") or "")
    if not platform:
        raise BadJobArgs("module_platform_id", "names no distribution (and no distro is given)")
    matches = [distros.get(n) for n in distros.names()]
    matches = [d for d in matches if d.module_platform_id == platform
               and (not release or d.release_version == release)]
    if not matches:
        raise BadJobArgs("module_platform_id",
                         f"no distribution has module platform {platform!r} and release {release!r}")
    return matches[0]


def _distro_arch(args: Any) -> tuple[Distro, str]:
    if not isinstance(args, dict):
        raise BadJobArgs("args", "must be an object")
    d = find_distro(args)
    arch = args.get("arch")
    if not isinstance(arch, str) or not arch:
        raise BadJobArgs("arch", "must be a non-empty string")
    return d, arch


def depsolve_args(args: dict[str, Any]) -> dict[str, Any]:
    """A depsolve job's arguments in osbuildd's form (``distro``, ``arch``, ``package_sets`` of
    ``{include, exclude, repos: [Repository dict]}`` chains)."""
    d, arch = _distro_arch(args)
    key = "package_sets" if "package_sets" in args else "grouped_package_sets"
    groups = args.get(key)
    if not isinstance(groups, dict) or not groups:
        raise BadJobArgs(key, "must be a non-empty object of package set chains")
    sets: dict[str, list[dict[str, Any]]] = {}
    for name, chain in groups.items():
        if not isinstance(chain, list):
            raise BadJobArgs(f"{key}.{name}", "must be a list of package sets")
        links = []
        for i, link in enumerate(chain):
            at = f"{key}.{name}[{i}]"
            if not isinstance(link, dict):
                raise BadJobArgs(at, "must be an object")
            repos = link.get("repos", link.get("repositories")) or []
            if not isinstance(repos, list):
                raise BadJobArgs(f"{at}.repos", "must be a list")
            links.append({"include": _strings(link.get("include"), f"{at}.include"),
                          "exclude": _strings(link.get("exclude"), f"{at}.exclude"),
                          "repos": [repository(r, f"{at}.repos[{j}]").to_dict() for j, r in enumerate(repos)]})
        sets[name] = links
    return {**{k: v for k, v in args.items() if k != "grouped_package_sets"},
            "distro": d.name, "arch": arch, "package_sets": sets}


def search_args(args: dict[str, Any]) -> tuple[Distro, str, list[Repository], list[str]]:
    """A search-packages job's (distribution, arch, repositories, patterns); osbuildd's
    ``repositories``/``packages`` or upstream's ``repos``/``packages``."""
    d, arch = _distro_arch(args)
    key = "repositories" if "repositories" in args else "repos"
    raw = args.get(key)
    if raw is None:   # none given: the distribution's own
        try:
            repos = list(d.arch(arch).repositories)
        except LookupError:
            raise BadJobArgs("arch", f"{d.name} has no architecture {arch!r}") from None
    elif isinstance(raw, list):
        repos = [repository(r, f"{key}[{i}]") for i, r in enumerate(raw)]
    else:
        raise BadJobArgs(key, "must be a list")
    return d, arch, repos, _strings(args.get("packages"), "packages")
