"""What the depsolve and manifest jobs do (upstream's worker/composer side).

``solve``/``make_manifest`` raise; ``run_depsolve``/``run_manifest`` are the job handlers, which turn
the same failures into job errors. ``ComposeService.start`` calls the raising pair inside the request
(as upstream's Weldr compose handler), so a compose that cannot be built is refused before anything
is stored, and the results it stores are exactly the ones the job handlers would have recorded."""

from __future__ import annotations

import asyncio
from typing import Any

from osbuildd import distro as distros
from osbuildd.blueprint import Blueprint, BlueprintError
from osbuildd.config import Config
from osbuildd.depsolve import DepsolveError, DepsolveProblem, PackageSetRequest, PackageSpec, depsolve
from osbuildd.distro import Repository
from osbuildd.errors import ErrorKind, ServiceError
from osbuildd.queue import JobError, errors

from .. import __version__
from . import jobargs


class ManifestError(ServiceError, ValueError):
    """The manifest generator refused the request (a blueprint/customization it cannot honour);
    ``field``: the blueprint field when the generator named one."""

    kind = ErrorKind.INVALID
    error_id = "ManifestCreationFailed"

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message, field=field)
        self.message = message


async def solve(config: Config, args: dict[str, Any]) -> dict[str, Any]:
    """``depsolve`` job arguments (osbuildd's or upstream's, see jobargs) -> its result (upstream's
    DepsolveJobResult keys). Raises DepsolveError, or KeyError/LookupError/BadJobArgs for malformed arguments."""
    args = jobargs.depsolve_args(args)
    d = distros.get(args["distro"])
    sets: dict[str, PackageSetRequest] = {}
    for name, chain in (args.get("package_sets") or {}).items():
        include: list[str] = []
        exclude: list[str] = []
        repos: list[Repository] = []
        for link in chain:   # upstream: a chain of sets solved together; we merge the links
            include += link.get("include") or []
            exclude += link.get("exclude") or []
            repos += [Repository.from_dict(r) for r in link.get("repos") or []]
        sets[name] = PackageSetRequest(include=include, exclude=exclude, repositories=repos)
    solved = await depsolve(d, args["arch"], sets, config.cache_dir / "depsolve")
    return {
        "package_specs": {name: [p.to_dict() for p in specs] for name, specs in solved.items()},
        "repo_configs": {name: [r.to_dict() for r in sets[name].repositories] for name in sets},
    }


def depsolve_job_error(exc: DepsolveError) -> JobError:
    err_id = errors.DNF_REPO_ERROR if exc.problem == DepsolveProblem.REPOSITORY else errors.DNF_DEPSOLVE_ERROR
    details = {k: v for k, v in (("package", exc.package), ("repository", exc.repository)) if v}
    return JobError(err_id, str(exc), details or None)


async def run_depsolve(config: Config, args: dict[str, Any]) -> tuple[dict[str, Any], JobError | None]:
    """``depsolve`` job: package sets -> exact packages."""
    try:
        return await solve(config, args), None
    except DepsolveError as exc:
        return {"error": str(exc), "error_type": str(exc.problem)}, depsolve_job_error(exc)
    except (KeyError, LookupError, jobargs.BadJobArgs) as exc:
        return {}, JobError(errors.DNF_OTHER_ERROR, f"bad depsolve job arguments: {exc}")


async def run_search(config: Config, args: dict[str, Any]) -> tuple[dict[str, Any], JobError | None]:
    """``search-packages`` job (upstream's SearchPackagesJob, or osbuildd's form): the packages
    matching the patterns, newest version of each, as ``{"packages": [...]}``."""
    from osbuildd.depsolve import search
    try:
        d, arch, repos, patterns = jobargs.search_args(args)
        found = await search(d, arch, repos, patterns, config.cache_dir / "depsolve")
    except DepsolveError as exc:
        return {"packages": []}, depsolve_job_error(exc)
    except (KeyError, LookupError, jobargs.BadJobArgs) as exc:
        return {"packages": []}, JobError(errors.DNF_OTHER_ERROR, f"bad search-packages job arguments: {exc}")
    return {"packages": [p.to_dict() for p in found]}, None


async def make_manifest(args: dict[str, Any], depsolved_result: dict[str, Any]) -> dict[str, Any]:
    """``manifest-id-only`` job arguments + the depsolve job's result -> its result.
    Raises ManifestError."""
    from osbuildd import manifest
    try:
        d = distros.get(args["distro"])
        arch = d.arch(args["arch"])
        it = arch.image_type(args["image_type"])
        bp = Blueprint.from_json(args["blueprint"])
        depsolved = {name: [PackageSpec.from_dict(p) for p in specs]
                     for name, specs in depsolved_result["package_specs"].items()}
        # sync and CPU-light (a few ms), but a big package set's JSON is worth keeping off the loop
        mr = await asyncio.to_thread(manifest.generate, d, arch.name, it, bp, depsolved,
                                     int(args.get("seed") or 0), size=args.get("size"))
    except (BlueprintError, LookupError, ValueError) as exc:
        raise ManifestError(str(exc), getattr(exc, "field", "") or "") from exc
    build_pipelines = [p["name"] for p in mr.manifest.get("pipelines", []) if p.get("name") == "build"]
    payload = [p["name"] for p in mr.manifest.get("pipelines", []) if p.get("name") != "build"]
    return {
        "manifest": mr.manifest,
        "manifest_info": {"osbuild_composer_version": f"osbuildd-{__version__}", "deps": None},
        "exports": mr.exports, "checkpoints": mr.checkpoints, "filename": mr.filename,
        "pipeline_names": {"build": build_pipelines, "payload": payload},
    }


async def run_manifest(config: Config, args: dict[str, Any],
                       dynamic_args: list[dict[str, Any]]) -> tuple[dict[str, Any], JobError | None]:
    """``manifest-id-only`` job: request + depsolve result -> osbuild manifest v2."""
    if not dynamic_args or "package_specs" not in dynamic_args[0]:
        return {}, JobError(errors.MANIFEST_DEPENDENCY, "depsolve result missing")
    try:
        return await make_manifest(args, dynamic_args[0]), None
    except ManifestError as exc:
        return {}, JobError(errors.MANIFEST_GENERATION, f"manifest generation failed: {exc}")
