"""``projects/*`` and ``modules/*``: package search and depsolve for a distro (``?distro=``/``?arch=``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from osbuildd.api.weldr.errors import bad_request
from osbuildd.api.weldr.packages import depsolved, package_infos, repositories
from osbuildd.api.weldr.util import V, ctx, distro_arch, json_response, offset_limit

routes = web.RouteTableDef()


async def _search(request: web.Request, patterns: list[str], err_id: str, *, fetch: bool = True) -> list[Any]:
    """Packages matching ``patterns``, with what the index lacks (Debian: build time, license) read
    from the packages (``fetch``) or only from the cache (lists of every package)."""
    c = ctx(request)
    distro, arch = distro_arch(request)
    repos = await repositories(c, distro, arch)
    try:
        found = await c.depsolver.search(distro, arch, repos, patterns, c.cache_dir)
        details = getattr(c.depsolver, "details", None)   # test depsolvers have no details
        if details is not None and found:
            found = await details(distro, arch, repos, found, c.cache_dir, fetch=fetch)
        return found
    except Exception as e:  # the solver's failure (network, broken repo) is the client's answer
        if not _is_solver_error(e):
            raise
        raise bad_request(err_id, f"msg: {e}") from e


async def _depsolve(request: web.Request, names: list[str]) -> list[Any]:
    from osbuildd.depsolve import PackageSetRequest

    c = ctx(request)
    distro, arch = distro_arch(request)
    repos = await repositories(c, distro, arch)
    result = await c.depsolver.depsolve(distro, arch, {"packages": PackageSetRequest(include=names, repositories=repos)},
                                        c.cache_dir)
    return result["packages"]


def _is_solver_error(e: Exception) -> bool:
    return type(e).__name__ in ("DepsolveError", "SolverError") or isinstance(e, OSError)


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
    try:
        deps = await _depsolve(request, names)
    except Exception as e:
        if not _is_solver_error(e):
            raise
        raise bad_request("ProjectsError", f"BadRequest: {e}") from e
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
        try:
            deps = await _depsolve(request, [info["name"]])
        except Exception as e:
            if not _is_solver_error(e):
                raise
            raise bad_request("ModulesError", f"Cannot depsolve package {info['name']}: {e}") from e
        info["dependencies"] = [depsolved(p) for p in deps]
    return json_response({"modules": infos})
