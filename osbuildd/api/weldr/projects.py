"""``projects/*`` and ``modules/*``: package search and depsolve for a distro (``?distro=``/``?arch=``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from osbuildd.api.weldr.errors import bad_request
from osbuildd.api.weldr.packages import depsolved, package_infos, repositories
from osbuildd.api.weldr.util import V, ctx, distro_arch, json_response, offset_limit
from osbuildd.depsolve import DepsolveError, PackageInfo, PackageSetRequest, PackageSpec

routes = web.RouteTableDef()


@contextmanager
def _solver_failure(err_id: str, prefix: str) -> Iterator[None]:
    """The solver's failure (network, broken repository, unknown package) as this route words it:
    each projects/modules route has its own id and prefix, so it is said here, not in the middleware."""
    try:
        yield
    except (DepsolveError, OSError) as e:
        raise bad_request(err_id, f"{prefix}{e}") from e


async def _search(request: web.Request, patterns: list[str], err_id: str, *,
                  fetch: bool = True) -> list[PackageInfo]:
    """Packages matching ``patterns``, with what the index lacks (Debian: build time, license) read
    from the packages (``fetch``) or only from the cache (lists of every package)."""
    c = ctx(request)
    distro, arch = distro_arch(request)
    repos = await repositories(c, distro, arch)
    with _solver_failure(err_id, "msg: "):
        found = await c.depsolver.search(distro, arch, repos, patterns, c.cache_dir)
        details = getattr(c.depsolver, "details", None)   # test depsolvers have no details
        if details is not None and found:
            found = await details(distro, arch, repos, found, c.cache_dir, fetch=fetch)
        return found


async def _depsolve(request: web.Request, names: list[str]) -> list[PackageSpec]:
    c = ctx(request)
    distro, arch = distro_arch(request)
    repos = await repositories(c, distro, arch)
    result = await c.depsolver.depsolve(distro, arch, {"packages": PackageSetRequest(include=names, repositories=repos)},
                                        c.cache_dir)
    return result["packages"]


def _names(request: web.Request) -> list[str]:
    raw = request.match_info.get("names", "")
    return [n for n in raw.split(",") if n]


@routes.get(V + "/projects/list")
@routes.get(V + "/projects/list/")
async def projects_list(request: web.Request) -> web.Response:
    offset, limit = offset_limit(request)
    infos = package_infos(await _search(request, [], "ProjectsError", fetch=False))
    return json_response({"total": len(infos), "offset": offset, "limit": limit,
                          "projects": infos[offset:offset + limit]})


@routes.get(V + "/projects/info")
@routes.get(V + "/projects/info/")
@routes.get(V + "/projects/info/{names}")
async def projects_info(request: web.Request) -> web.Response:
    names = _names(request)
    if not names:
        raise bad_request("UnknownProject", "No packages specified.")
    infos = package_infos(await _search(request, names, "ProjectsError"))
    if not infos:
        raise bad_request("UnknownProject", "No packages have been found.")
    return json_response({"projects": infos})


@routes.get(V + "/projects/depsolve")
@routes.get(V + "/projects/depsolve/")
@routes.get(V + "/projects/depsolve/{names}")
async def projects_depsolve(request: web.Request) -> web.Response:
    names = _names(request)
    if not names:
        raise bad_request("UnknownProject", "No packages specified.")
    with _solver_failure("ProjectsError", "BadRequest: "):
        deps = await _depsolve(request, names)
    return json_response({"projects": [depsolved(p) for p in deps]})


@routes.get(V + "/modules/list")
@routes.get(V + "/modules/list/")
@routes.get(V + "/modules/list/{names}")
async def modules_list(request: web.Request) -> web.Response:
    offset, limit = offset_limit(request)
    names = _names(request)
    infos = package_infos(await _search(request, names, "ModulesError", fetch=False))   # names only
    if names and not infos:
        raise bad_request("UnknownModule", "No packages have been found.")
    modules = [{"name": i["name"], "group_type": "rpm"} for i in infos]
    return json_response({"total": len(modules), "offset": offset, "limit": limit,
                          "modules": modules[offset:offset + limit]})


@routes.get(V + "/modules/info")
@routes.get(V + "/modules/info/")
@routes.get(V + "/modules/info/{names}")
async def modules_info(request: web.Request) -> web.Response:
    names = _names(request)
    if not names:
        raise bad_request("UnknownModule", "No packages specified.")
    infos = package_infos(await _search(request, names, "ModulesError"))
    if not infos:
        raise bad_request("UnknownModule", "No packages have been found.")
    for info in infos:
        with _solver_failure("ModulesError", f"Cannot depsolve package {info['name']}: "):
            deps = await _depsolve(request, [info["name"]])
        info["dependencies"] = [depsolved(p) for p in deps]
    return json_response({"modules": infos})
