"""Depsolving: one interface, a solver per distribution family (apt for Debian, dnf for RPM)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from osbuildd.errors import ErrorKind, ServiceError

if TYPE_CHECKING:
    from osbuildd.distro import Distro, Repository

__all__ = ["DepsolveError", "DepsolveProblem", "Depsolver", "PackageInfo", "PackageSetRequest", "PackageSpec",
           "depsolve", "details", "search"]


@dataclass
class PackageSpec:
    """One exact package the image will contain (upstream rpmmd.PackageSpec)."""

    name: str
    epoch: int
    version: str        # Debian: the upstream part of the version (debversion)
    release: str        # Debian: the revision ("0" for a native package)
    arch: str
    url: str
    checksum: str       # "sha256:<hex>"
    size: int = 0
    repo_id: str = ""
    check_gpg: bool = False
    deb_version: str = ""   # Debian: the exact version apt knows ([epoch:]upstream[-revision]); RPM: ""

    def evr(self) -> str:
        if self.deb_version:
            return self.deb_version
        vr = f"{self.version}-{self.release}" if self.release else self.version
        return f"{self.epoch}:{vr}" if self.epoch else vr

    def nevra(self) -> str:
        return f"{self.name}-{self.evr()}.{self.arch}"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PackageSpec:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class PackageSetRequest:
    include: list[str]
    exclude: list[str] = field(default_factory=list)
    repositories: list[Repository] = field(default_factory=list)


@dataclass
class PackageInfo:
    """What search/list returns (the Weldr projects/* and Cloud package search shapes)."""

    name: str
    summary: str = ""
    description: str = ""
    homepage: str = ""
    license: str = ""
    epoch: int = 0
    version: str = ""
    release: str = ""
    arch: str = ""
    build_time: str = ""      # ISO 8601 UTC, "" when unknown
    repo_id: str = ""
    source_ref: str = ""      # the source it was built from (Debian: "src=version"; RPM: the source rpm)
    deb_version: str = ""     # Debian: the exact version apt knows; RPM: ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class DepsolveProblem(StrEnum):
    NOT_FOUND = "not-found"     # a package (or the version asked for) is not in the repositories
    CONFLICT = "conflict"       # the packages cannot be installed together
    REPOSITORY = "repository"   # a repository is unreachable, broken or refused by the checks


class DepsolveError(ServiceError):
    """``problem`` says which :class:`DepsolveProblem`; ``package`` or ``repository`` names the culprit.
    (``kind`` is the ServiceError kind, FAILED for every problem, as upstream's Weldr answers.)"""

    kind = ErrorKind.FAILED
    error_id = "DepsolveError"

    def __init__(self, problem: str, message: str, *, package: str = "", repository: str = "") -> None:
        super().__init__(message)
        self.problem = DepsolveProblem(problem)
        self.message = message
        self.package = package
        self.repository = repository


class _Solver(Protocol):
    """What each family's solver module (apt, dnf) offers."""

    async def depsolve(self, distro: Distro, arch: str, sets: dict[str, PackageSetRequest],
                       cache_dir: Path) -> dict[str, list[PackageSpec]]: ...

    async def search(self, distro: Distro, arch: str, repos: list[Repository], patterns: list[str],
                     cache_dir: Path) -> list[PackageInfo]: ...


def _solver(distro: Distro) -> _Solver:
    if distro.family == "debian":
        from osbuildd.depsolve import apt
        return apt
    if distro.family == "rpm":
        from osbuildd.depsolve import dnf
        return dnf
    raise DepsolveError("repository", f"no solver for distribution family {str(distro.family)!r}")


class Depsolver(Protocol):
    """What the services need of a depsolver: this module is one (``Services.depsolver``); the
    Weldr tests use upstream's mock depsolver."""

    async def depsolve(self, distro: Distro, arch: str, sets: dict[str, PackageSetRequest],
                       cache_dir: Path) -> dict[str, list[PackageSpec]]: ...

    async def search(self, distro: Distro, arch: str, repos: list[Repository], patterns: list[str],
                     cache_dir: Path) -> list[PackageInfo]: ...

    async def details(self, distro: Distro, arch: str, repos: list[Repository], found: list[PackageInfo],
                      cache_dir: Path, *, fetch: bool = True) -> list[PackageInfo]: ...


async def depsolve(distro: Distro, arch: str, sets: dict[str, PackageSetRequest],
                   cache_dir: Path) -> dict[str, list[PackageSpec]]:
    """Resolve each named package set (e.g. "build", "os") on its own to exact packages."""
    distro.arch(arch)  # UnknownArch early, before any network
    return await _solver(distro).depsolve(distro, arch, sets, cache_dir)


async def search(distro: Distro, arch: str, repos: list[Repository], patterns: list[str],
                 cache_dir: Path) -> list[PackageInfo]:
    """Packages matching the glob patterns (empty list = all), newest version of each, by name."""
    distro.arch(arch)
    return await _solver(distro).search(distro, arch, repos, patterns, cache_dir)


async def details(distro: Distro, arch: str, repos: list[Repository], found: list[PackageInfo],
                  cache_dir: Path, *, fetch: bool = True) -> list[PackageInfo]:
    """``found`` (from :func:`search`) with build time and license filled where the index lacks
    them (Debian: read from the packages themselves, cached; ``fetch=False`` uses the cache only)."""
    if distro.family != "debian":
        return found
    from osbuildd.depsolve import debmeta
    return await debmeta.fill(distro, arch, repos, found, cache_dir, fetch=fetch)
