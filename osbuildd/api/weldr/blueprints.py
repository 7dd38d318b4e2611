"""``blueprints/*``: list, info, changes, change, diff, depsolve, freeze, new, workspace, undo, tag, delete."""

from __future__ import annotations

from aiohttp import web

from osbuildd.api.weldr import bpstore
from osbuildd.api.weldr.bodies import media_type, read_body
from osbuildd.api.weldr.errors import bad_request, error_entry
from osbuildd.api.weldr.packages import depsolved, repositories
from osbuildd.api.weldr.util import (
    V,
    check_name,
    ctx,
    format_param,
    json_response,
    min_version,
    offset_limit,
    ok,
    split_names,
    text_response,
)
from osbuildd.blueprint import Blueprint, BlueprintError
from osbuildd.blueprint.freeze import freeze
from osbuildd.blueprint.store import BlueprintStore
from osbuildd.blueprint.validation import standardize_distro
from osbuildd.depsolve import DepsolveError, PackageSetRequest, PackageSpec

routes = web.RouteTableDef()
BAD_REQUEST = "400 Bad Request: The browser (or proxy) sent a request that this server could not understand: "
TOML_ONE = "toml format only supported when requesting one blueprint"


def _store(request: web.Request) -> BlueprintStore:
    return ctx(request).blueprints


@routes.get(V + "/blueprints/list")
async def blueprints_list(request: web.Request) -> web.Response:
    offset, limit = offset_limit(request)
    names = await bpstore.names(_store(request))
    total = len(names)
    offset = min(offset, total)
    limit = min(limit, total - offset)
    return json_response({"total": total, "offset": offset, "limit": limit,
                          "blueprints": names[offset:offset + limit]})


@routes.get(V + "/blueprints/info/{names}")
async def blueprints_info(request: web.Request) -> web.Response:
    fmt = format_param(request)
    names = split_names(request.match_info["names"])
    if fmt == "toml":
        if len(names) > 1:
            raise bad_request("HTTPError", TOML_ONE)
        bp, _ = await bpstore.current(_store(request), names[0])
        if bp is None:
            return json_response({"status": False, "errors": [error_entry("UnknownBlueprint", f"{names[0]}: ")]},
                                 status=400)
        return text_response(bp.to_toml())
    found, changes, errors = [], [], []
    for name in names:
        rendered, changed = await bpstore.current_dict(_store(request), name)
        if rendered is None:
            errors.append(error_entry("UnknownBlueprint", f"{name}: "))
            continue
        found.append(rendered)
        changes.append({"changed": changed, "name": name})
    return json_response({"blueprints": found, "changes": changes, "errors": errors})


@routes.get(V + "/blueprints/changes/{names}")
async def blueprints_changes(request: web.Request) -> web.Response:
    offset, limit = offset_limit(request)
    names = split_names(request.match_info["names"])
    out, errors = [], []
    for name in names:
        changes = await bpstore.changes(_store(request), name)
        if not changes:
            errors.append(error_entry("UnknownBlueprint", name))
            continue
        # upstream echoes offset/limit but does not slice the change list
        out.append({"changes": [ch.to_dict() for ch in changes], "name": name, "total": len(changes)})
    return json_response({"blueprints": out, "errors": errors, "limit": limit, "offset": offset})


@routes.get(V + "/blueprints/change/{name}/{commit}")
@min_version(1)
async def blueprints_change(request: web.Request) -> web.Response:
    fmt = format_param(request)
    name, commit = request.match_info["name"], request.match_info["commit"]
    check_name(name)
    check_name(commit)
    bp = await bpstore.at_commit(_store(request), name, commit)
    if fmt == "toml":
        return text_response(bp.to_toml())
    return json_response(bp.to_dict())


@routes.get(V + "/blueprints/diff/{name}/{from}/{to}")
async def blueprints_diff(request: web.Request) -> web.Response:
    name, frm, to = request.match_info["name"], request.match_info["from"], request.match_info["to"]
    for part in (name, frm, to):
        check_name(part)
    return json_response({"diff": await bpstore.diff(_store(request), name, frm, to)})


# ------------------------------------------------------------------------------ depsolve / freeze


async def _depsolve_bp(request: web.Request, bp: Blueprint) -> list[PackageSpec]:
    c = ctx(request)
    arch = bp.arch or c.host_arch
    distro = c.distro(bp.distro or c.host_distro)
    repos = await repositories(c, distro, arch)
    specs = list(bp.package_specs())
    if not specs:
        return []
    sets = {"packages": PackageSetRequest(include=specs, repositories=repos)}
    return (await c.depsolver.depsolve(distro, arch, sets, c.cache_dir))["packages"]


# what makes one blueprint's depsolve fail (an entry of the 200 answer's errors), not the request's
SOLVER_FAILURES = (DepsolveError, OSError, LookupError)   # LookupError: UnknownDistro/UnknownArch too


@routes.get(V + "/blueprints/depsolve/{names}")
async def blueprints_depsolve(request: web.Request) -> web.Response:
    names = split_names(request.match_info["names"])
    out, errors = [], []
    for name in names:
        bp, _ = await bpstore.current(_store(request), name)
        if bp is None:
            errors.append(error_entry("UnknownBlueprint", f"{name}: blueprint not found"))
            continue
        try:
            deps = await _depsolve_bp(request, bp)
        except SOLVER_FAILURES as e:
            errors.append(error_entry("BlueprintsError", f"{name}: {e}"))
            deps = []
        out.append({"blueprint": bp.to_dict(), "dependencies": [depsolved(p) for p in deps]})
    return json_response({"blueprints": out, "errors": errors})


@routes.get(V + "/blueprints/freeze/{names}")
async def blueprints_freeze(request: web.Request) -> web.Response:
    fmt = format_param(request)
    names = split_names(request.match_info["names"])
    if fmt == "toml" and len(names) > 1:
        raise bad_request("HTTPError", TOML_ONE)
    out, errors = [], []
    for name in names:
        bp, _ = await bpstore.current(_store(request), name)
        if bp is None:
            errors.append(error_entry("UnknownBlueprint", f"{name}: blueprint not found"))
            continue
        try:
            frozen = freeze(bp, await _depsolve_bp(request, bp))
        except (BlueprintError, *SOLVER_FAILURES) as e:
            errors.append(error_entry("BlueprintsError", f"{name}: {e}"))
            break
        out.append(frozen)
    if fmt == "toml":
        return text_response(out[0].to_toml() if out else "")
    return json_response({"blueprints": [{"blueprint": b.to_dict()} for b in out], "errors": errors})


# ----------------------------------------------------------------------------------------- writes


async def _decode_blueprint(request: web.Request) -> Blueprint:
    """The POSTed blueprint, checked as upstream's new/workspace handlers check it (their own
    wording of a BlueprintError, hence the try/excepts here)."""
    ctype = media_type(request)
    if not ctype:
        raise bad_request("BlueprintsError", "missing Content-Type header")
    raw = await read_body(request)
    if not raw:
        raise bad_request("BlueprintsError", "Missing blueprint")
    try:
        if ctype == "application/json":
            bp = Blueprint.from_json(raw)
        elif ctype == "text/x-toml":
            bp = Blueprint.from_toml(raw)
        else:
            raise bad_request("BlueprintsError", BAD_REQUEST + "blueprint must be in json or toml format")
    except BlueprintError as e:
        raise bad_request("BlueprintsError", BAD_REQUEST + e.message) from e
    check_name(bp.name)
    c = ctx(request)
    if bp.distro:
        try:
            bp.distro = standardize_distro(bp.distro)
        except Exception:  # an unparsable name is reported by the check below
            pass
        arch = bp.arch or c.host_arch
        if bp.distro not in c.distro_names(arch):
            raise bad_request("BlueprintsError", f"'{bp.distro}' is not a valid distribution (architecture '{arch}')")
    try:
        bp.initialize()
    except BlueprintError as e:
        raise bad_request("BlueprintsError", e.message) from e
    return bp


@routes.post(V + "/blueprints/new")
async def blueprints_new(request: web.Request) -> web.Response:
    bp = await _decode_blueprint(request)
    await bpstore.push(_store(request), bp)
    return ok()


@routes.post(V + "/blueprints/workspace")
async def blueprints_workspace(request: web.Request) -> web.Response:
    bp = await _decode_blueprint(request)
    await bpstore.push_workspace(_store(request), bp)
    return ok()


@routes.post(V + "/blueprints/undo/{name}/{commit}")
async def blueprints_undo(request: web.Request) -> web.Response:
    name, commit = request.match_info["name"], request.match_info["commit"]
    check_name(name)
    check_name(commit)
    await bpstore.undo(_store(request), name, commit)
    return ok()


@routes.post(V + "/blueprints/tag/{name}")
async def blueprints_tag(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    check_name(name)
    await bpstore.tag(_store(request), name)
    return ok()


@routes.delete(V + "/blueprints/delete/{name}")
async def blueprints_delete(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    check_name(name)
    await bpstore.delete(_store(request), name)
    return ok()


@routes.delete(V + "/blueprints/workspace/{name}")
async def blueprints_workspace_delete(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    check_name(name)
    await bpstore.delete_workspace(_store(request), name)
    return ok()
