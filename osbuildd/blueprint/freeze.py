"""blueprints/freeze: pin every package and module of a blueprint to what depsolve chose."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from osbuildd.depsolve import PackageSpec
from osbuildd.depsolve.debversion import weldr_evr

from .errors import BlueprintError
from .model import Blueprint, Package

# a depsolved package: the depsolver's PackageSpec, or its JSON form (a stored compose's)
Depsolved: TypeAlias = PackageSpec | Mapping[str, Any]

_GLOB_CHARS = "*?"


def evra(pkg: Depsolved) -> str:
    """``[epoch:]version-release.arch`` of a depsolved package (an object or a dict); a Debian
    version reads the same way (release = Debian revision, "0" for native packages), and the apt
    solver takes this form back."""
    epoch, version, release = weldr_evr(pkg)
    arch = pkg.get("arch", "") if isinstance(pkg, Mapping) else getattr(pkg, "arch", "")
    vr = f"{version}-{release}" if release else version
    return f"{epoch}:{vr}.{arch}" if epoch else f"{vr}.{arch}"


def _name(pkg: Depsolved) -> str:
    return str(pkg["name"]) if isinstance(pkg, Mapping) else pkg.name


def _freeze_list(field: str, items: list[Package], deps: dict[str, Depsolved]) -> list[Package]:
    frozen: dict[str, str] = {}
    for item in items:
        if any(ch in item.name for ch in _GLOB_CHARS):
            for dep_name in fnmatch.filter(deps, item.name):
                frozen[dep_name] = evra(deps[dep_name])
        elif item.name in deps:
            frozen[item.name] = evra(deps[item.name])
        else:
            raise BlueprintError(field, f"{item.name} missing from depsolve results")
    return [Package(name=n, version=frozen[n]) for n in sorted(frozen)]


def freeze(bp: Blueprint, deps: Sequence[Depsolved]) -> Blueprint:
    """A copy of ``bp`` whose packages and modules carry the exact versions of ``deps`` (the
    depsolve result: objects or dicts with name, epoch, version, release, arch). Plain names must be
    in ``deps`` (else BlueprintError "<name> missing from depsolve results"); globs expand to every
    matching name; each list is sorted by name without duplicates. The version is not bumped."""
    by_name = {_name(p): p for p in deps}
    out = bp.copy()
    out.packages = _freeze_list("packages", bp.packages, by_name)
    out.modules = _freeze_list("modules", bp.modules, by_name)
    return out
