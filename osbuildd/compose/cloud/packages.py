"""The Cloud API's package questions (upstream ``depsolve.go``, ``search.go``) without HTTP: the request
parsed (distribution 4, architecture 5, repositories 7/29/42), the depsolve or search run through the
daemon's depsolver (upstream enqueues a job and waits for it, up to 5 minutes; the result is the same),
the answer in the Cloud API's JSON. Refusals are CloudRequestError with upstream's ids.

Repositories: the request's, else the distro's own. The Cloud ``Repository`` has no Debian fields, so
for a Debian distro each given ``baseurl`` is read as a mirror of the distro's own archive (its suite,
components and keyring, those of the distro's first repository).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from osbuildd.blueprint import Blueprint, BlueprintError
from osbuildd.depsolve import DepsolveError, Depsolver, PackageInfo, PackageSetRequest, PackageSpec
from osbuildd.depsolve.debversion import weldr_evr
from osbuildd.distro import (
    Arch,
    Distro,
    Distros,
    Repository,
    UnknownArch,
    UnknownDistro,
    UnknownImageType,
    repocheck,
)

from .errors import (
    UNSUPPORTED_ARCHITECTURE,
    UNSUPPORTED_DISTRIBUTION,
    UNSUPPORTED_IMAGE_TYPE,
    VALIDATION,
    CloudRequestError,
)

DEPSOLVE_FAILED, NO_BASEURL, NO_GPGKEY, INVALID_REQUEST, DISTRO_MISMATCH = 8, 7, 29, 42, 40
TIMEOUT = 300.0      # upstream's limit on a depsolve/search job (maxJobTimeoutMinutes)
FETCH_DETAILS = 20   # up to this many hits, read what the index lacks (Debian: license, build time)


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise CloudRequestError(VALIDATION, f"property {key!r} is missing or not a string")
    return value


def distro_arch(catalogue: Distros, body: dict[str, Any]) -> tuple[Distro, Arch]:
    """The request's distribution (4) and architecture (5)."""
    try:
        d = catalogue.get(_string(body, "distribution"))
    except UnknownDistro as e:
        raise CloudRequestError(UNSUPPORTED_DISTRIBUTION, str(e)) from None
    try:
        return d, d.arch(_string(body, "architecture"))
    except UnknownArch as e:
        raise CloudRequestError(UNSUPPORTED_ARCHITECTURE, str(e)) from None


def repository(d: Distro, arch: Arch, i: int, raw: Any) -> Repository:
    if not isinstance(raw, dict):
        raise CloudRequestError(VALIDATION, f"repositories[{i}] must be an object")
    baseurl, mirrorlist, metalink = raw.get("baseurl") or None, raw.get("mirrorlist") or None, raw.get("metalink") or None
    if not (baseurl or mirrorlist or metalink):
        raise CloudRequestError(NO_BASEURL, f"repositories[{i}] has no baseurl, mirrorlist or metalink")
    gpgkey = raw.get("gpgkey") or ""
    if d.family == "debian":
        if not baseurl:
            raise CloudRequestError(INVALID_REQUEST, f"repositories[{i}]: a Debian repository needs a baseurl")
        own = arch.repositories[0] if arch.repositories else Repository(id="")
        return Repository(id=f"repo-{i}", name=baseurl, baseurl=[baseurl], suite=own.suite or d.codename,
                          components=list(own.components or ["main"]), signed_by=own.signed_by,
                          gpgkeys=[gpgkey] if gpgkey else [], sslverify=not raw.get("ignore_ssl", False))
    if raw.get("check_gpg") and not gpgkey:
        raise CloudRequestError(NO_GPGKEY, f"repositories[{i}] has check_gpg set but no gpgkey")
    return Repository(id=f"repo-{i}", baseurl=[baseurl] if baseurl else None,
                      mirrorlist=None if baseurl else mirrorlist, metalink=None if baseurl or mirrorlist else metalink,
                      gpgkeys=[gpgkey] if gpgkey else [], check_gpg=bool(raw.get("check_gpg")),
                      check_repogpg=bool(raw.get("check_repo_gpg")), sslverify=not raw.get("ignore_ssl", False),
                      rhsm=bool(raw.get("rhsm")), module_hotfixes=raw.get("module_hotfixes"))


def repositories(d: Distro, arch: Arch, body: dict[str, Any]) -> list[Repository] | None:
    """The request's repositories as osbuildd's (checked as POST /compose checks them), None when it
    gives none."""
    raw = body.get("repositories")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise CloudRequestError(VALIDATION, "property 'repositories' must be an array")
    repos = [repository(d, arch, i, r) for i, r in enumerate(raw)]
    for i, r in enumerate(repos):
        try:
            repocheck.check(r)
        except repocheck.RepoCheckError as e:
            raise CloudRequestError(INVALID_REQUEST, f"repositories[{i}].{e.field}: {e}") from None
    return repos


def package_metadata(p: PackageSpec) -> dict[str, Any]:
    """PackageMetadata(Common) of a depsolved package, keys in upstream's order (the common ones
    alphabetical, then ``sigmd5``): type "deb" for Debian packages (the spec's ``type`` is a free
    string; upstream only ever writes "rpm"), the version split as Weldr shows it, ``sigmd5`` empty
    (a depsolve result has none; the spec requires the key)."""
    epoch, version, release = weldr_evr(p)
    out: dict[str, Any] = {"arch": p.arch}
    if p.checksum:
        out["checksum"] = p.checksum
    if epoch:
        out["epoch"] = str(epoch)
    out.update({"name": p.name, "release": release, "type": "deb" if p.deb_version else "rpm", "version": version,
                "sigmd5": ""})
    return out


def package_sets(catalogue: Distros, body: dict[str, Any]) -> tuple[Distro, Arch, dict[str, PackageSetRequest]]:
    d, arch = distro_arch(catalogue, body)
    raw = body.get("blueprint")
    if not isinstance(raw, dict):
        raise CloudRequestError(VALIDATION, "property 'blueprint' is missing or not an object")
    try:
        bp = Blueprint.from_dict(raw)
    except BlueprintError as e:
        raise CloudRequestError(INVALID_REQUEST, f"blueprint: {e}") from None
    if bp.distro and bp.distro != d.name:
        raise CloudRequestError(DISTRO_MISMATCH, f"blueprint distro {bp.distro!r} is not {d.name!r}")
    repos = repositories(d, arch, body)
    image_type = body.get("image_type")
    if image_type is None:
        return d, arch, {"os": PackageSetRequest(include=bp.package_specs(),
                                                 repositories=repos if repos is not None else list(arch.repositories))}
    try:
        it = arch.image_type(str(image_type))
    except UnknownImageType as e:
        raise CloudRequestError(UNSUPPORTED_IMAGE_TYPE, str(e)) from None
    from osbuildd import manifest
    try:
        os_set = manifest.package_sets(d, arch.name, it, bp)["os"]   # upstream answers the "os" set
    except BlueprintError as e:
        raise CloudRequestError(DEPSOLVE_FAILED, f"blueprint: {e}") from None
    if repos is not None:
        os_set.repositories = repos
    return d, arch, {"os": os_set}


def package_details(p: PackageInfo) -> dict[str, Any]:
    """PackageDetails (keys alphabetical, as upstream marshals it; empty optional ones left out)."""
    epoch, version, release = weldr_evr(p)
    out: dict[str, Any] = {"arch": p.arch}
    if p.build_time:
        out["buildtime"] = p.build_time
    if p.description:
        out["description"] = p.description
    if epoch:
        out["epoch"] = str(epoch)
    if p.license:
        out["license"] = p.license
    out.update({"name": p.name, "release": release})
    if p.summary:
        out["summary"] = p.summary
    if p.homepage:
        out["url"] = p.homepage
    out["version"] = version
    return out


async def depsolve_blueprint(catalogue: Distros, depsolver: Depsolver, cache_dir: Path,
                             body: dict[str, Any]) -> dict[str, Any]:
    """``POST /depsolve/blueprint``'s answer (DepsolveResponse) to the request object ``body``."""
    d, arch, sets = package_sets(catalogue, body)
    packages: list[PackageSpec] = []
    if sets["os"].include:
        try:
            async with asyncio.timeout(TIMEOUT):
                solved = await depsolver.depsolve(d, arch.name, sets, cache_dir / "depsolve")
        except (DepsolveError, OSError) as e:
            raise CloudRequestError(DEPSOLVE_FAILED, str(e)) from None
        except TimeoutError:
            raise CloudRequestError(DEPSOLVE_FAILED, f"depsolve did not finish within {TIMEOUT:g}s") from None
        packages = solved["os"]
    return {"packages": [package_metadata(p) for p in packages]}


async def search_packages(catalogue: Distros, depsolver: Depsolver, cache_dir: Path,
                          body: dict[str, Any]) -> dict[str, Any]:
    """``POST /search/packages``'s answer (SearchPackagesResponse) to the request object ``body``."""
    d, arch = distro_arch(catalogue, body)
    patterns = body.get("packages")
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise CloudRequestError(VALIDATION, "property 'packages' must be an array of strings")
    given = repositories(d, arch, body)
    repos = given if given is not None else list(arch.repositories)
    cache = cache_dir / "depsolve"
    try:
        async with asyncio.timeout(TIMEOUT):
            found = await depsolver.search(d, arch.name, repos, patterns, cache) if patterns else []
            details = getattr(depsolver, "details", None)   # test depsolvers may have none
            if details is not None and found:
                found = await details(d, arch.name, repos, found, cache, fetch=len(found) <= FETCH_DETAILS)
    except (DepsolveError, OSError) as e:
        raise CloudRequestError(DEPSOLVE_FAILED, str(e)) from None
    except TimeoutError:
        raise CloudRequestError(DEPSOLVE_FAILED, f"package search did not finish within {TIMEOUT:g}s") from None
    return {"packages": [package_details(p) for p in found]}
