"""Blueprints: list, create, get (a version), update (a new version), delete, export, compose from
one, its composes, and the experimental fixup. Everything through the store, scoped by organisation:
another organisation's blueprint is 404 on every route.

Bodies are stored as upstream stores them (``{customizations, distribution, image_requests}``),
users' plain passwords as their SHA-512 crypt; passwords are never answered (``hasPassword`` instead).
"""

from __future__ import annotations

import asyncio
import copy
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from osbuildd.imagebuilder import mapping
from osbuildd.imagebuilder.store import Blueprint, BlueprintNotFound

from .composes import compose_item, crypted, start_compose
from .context import (
    PREFIXES,
    ImageBuilderError,
    int_query,
    links,
    org,
    paging,
    rfc3339,
    store,
)
from .context import identity as caller
from .validation import body

_NON_BLANK = re.compile(r"\S+")
INVALID_NAME = "The blueprint name must contain at least two characters."   # upstream's wording (sic)
BODY_KEYS = ("customizations", "distribution", "image_requests")


def _unprocessable(title: str, detail: str) -> ImageBuilderError:
    return ImageBuilderError(422, detail, title=title)


def _not_found() -> ImageBuilderError:
    return ImageBuilderError(404, BlueprintNotFound().reason)


def _check_name(name: str) -> None:
    if not _NON_BLANK.search(name):
        raise _unprocessable("Invalid blueprint name", INVALID_NAME)


def _users(doc: dict[str, Any]) -> list[dict[str, Any]]:
    users = (doc.get("customizations") or {}).get("users")
    return [u for u in users if isinstance(u, dict)] if isinstance(users, list) else []


def _check_users(doc: dict[str, Any]) -> None:
    for user in _users(doc):
        if not _NON_BLANK.search(str(user.get("name", ""))):
            raise _unprocessable("Invalid user", "missing user name")


def _stored_body(request_body: dict[str, Any]) -> dict[str, Any]:
    return {k: request_body[k] for k in BODY_KEYS if k in request_body}


def redacted_body(doc: Any) -> Any:
    return mapping.redacted(doc)


def _named(bp: Blueprint) -> dict[str, Any]:
    """The stored body with the blueprint's name and description (kept in their own columns)."""
    return {**(bp.body if isinstance(bp.body, dict) else {}), "name": bp.name, "description": bp.description}


async def _get(request: web.Request, version: int | None = None) -> Blueprint:
    try:
        return await store(request).get_blueprint(org(request), request.match_info["id"], version)
    except BlueprintNotFound:
        raise _not_found() from None


async def list_blueprints(request: web.Request) -> web.Response:
    limit, offset = paging(request)
    name, search = request.query.get("name", ""), request.query.get("search", "")
    params: dict[str, str] = {}
    if name:
        params["name"] = name
        found = await store(request).find_blueprint_by_name(org(request), name)
        items, count = ([found] if found else []), (1 if found else 0)
    else:
        if search:
            params["search"] = search
        page = await store(request).list_blueprints(org(request), search=search or None, limit=limit, offset=offset)
        items, count = page.items, page.count
    data = [{"id": b.id, "name": b.name, "description": b.description, "version": b.version,
             "last_modified_at": rfc3339(b.last_modified_at)} for b in items]
    return web.json_response({"meta": {"count": count}, "links": links("blueprints", count, limit, params),
                              "data": data})


async def create_blueprint(request: web.Request) -> web.Response:
    req = body(request)
    _check_name(req["name"])
    _check_users(req)
    stored = await asyncio.to_thread(crypted, _stored_body(req))
    bp = await store(request).create_blueprint(
        org(request), req["name"], stored, description=req.get("description") or "",
        account_number=caller(request).account_number or None, metadata=req.get("metadata"))
    return web.json_response({"id": bp.id}, status=201)


async def get_blueprint(request: web.Request) -> web.Response:
    version: int | None = int_query(request, "version", -1)
    if version is not None and version <= 0:
        if version != -1:
            raise ImageBuilderError(400, "Invalid version number")
        version = None
    bp = await _get(request, version)
    shown = redacted_body(bp.body) if isinstance(bp.body, dict) else {}
    out: dict[str, Any] = {"id": bp.id, "name": bp.name, "description": bp.description,
                           "image_requests": shown.get("image_requests", []),
                           "customizations": shown.get("customizations", {}),
                           "lint": {"errors": [], "warnings": []}}
    if "distribution" in shown:
        out["distribution"] = shown["distribution"]
    return web.json_response(out)


def _merge_users(new: dict[str, Any], old: dict[str, Any]) -> None:
    """Upstream's MergeForUpdate: a user sent without password or ssh_key keeps the stored one; an
    empty string removes it; a user unknown before must have a name."""
    existing = {u.get("name"): u for u in _users(old)}
    for user in _users(new):
        if not (user.get("password") and user.get("ssh_key")):
            before = existing.get(user.get("name"))
            if before is not None:
                for key in ("password", "ssh_key"):
                    if key not in user and key in before:
                        user[key] = before[key]
        for key in ("password", "ssh_key"):
            if user.get(key) == "":
                del user[key]
        user.pop("hasPassword", None)
    _check_users(new)


async def update_blueprint(request: web.Request) -> web.Response:
    req = body(request)
    _check_name(req["name"])
    new = copy.deepcopy(_stored_body(req))
    if _users(new):
        current = await _get(request)
        _merge_users(new, current.body if isinstance(current.body, dict) else {})
    stored = await asyncio.to_thread(crypted, new)
    try:
        bp = await store(request).update_blueprint(org(request), request.match_info["id"], req["name"], stored,
                                                   description=req.get("description") or "")
    except BlueprintNotFound:
        raise _not_found() from None
    return web.json_response({"id": bp.id})


async def delete_blueprint(request: web.Request) -> web.Response:
    try:
        await store(request).delete_blueprint(org(request), request.match_info["id"])
    except BlueprintNotFound:
        raise ImageBuilderError(404, "Not Found") from None   # upstream's bare 404 here
    return web.Response(status=204)


def go_time_string(t: datetime) -> str:
    """Go's ``time.Time.String()`` of a UTC time (upstream's ``exported_at``): nanoseconds with the
    trailing zeros dropped, none at all when zero, then ``+0000 UTC``."""
    frac = f"{t.microsecond:06d}000".rstrip("0")
    return t.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "") + " +0000 UTC"


async def export_blueprint(request: web.Request) -> web.Response:
    bp = await _get(request)
    metadata = {"parent_id": bp.id, "exported_at": go_time_string(datetime.now(UTC)), "is_on_prem": False}
    return web.json_response(mapping.export_blueprint(_named(bp), metadata))


def _client_id(request: web.Request) -> str:
    ui = request.headers.get("X-ImageBuilder-ui", "")
    return "mcp" if ui == "mcp" else ("ui" if ui else "api")


async def compose_blueprint(request: web.Request) -> web.Response:
    wanted = (body(request) or {}).get("image_types")
    bp = await _get(request)
    requests = mapping.blueprint_compose_requests(_named(bp), wanted, client_id=_client_id(request))
    ids = []
    for ib_request in requests:
        ids.append(await start_compose(request, ib_request, blueprint_id=bp.id, blueprint_version=bp.version,
                                       blueprint_version_id=bp.version_id))
    return web.json_response([{"id": i} for i in ids], status=201)


async def blueprint_composes(request: web.Request) -> web.Response:
    limit, offset = paging(request)
    bid, org_id = request.match_info["id"], org(request)
    raw_version = request.query.get("blueprint_version")
    version = None if raw_version is None else int(raw_version)
    try:
        if version is not None and version < 0:
            version = await store(request).latest_blueprint_version(org_id, bid)
        page = await store(request).blueprint_composes(
            org_id, bid, version=version, limit=limit, offset=offset,
            ignore_image_types=request.query.getall("ignoreImageTypes", []))
    except BlueprintNotFound:
        raise _not_found() from None
    params = {"blueprint_id": bid, **({"blueprint_version": str(version)} if version is not None else {})}
    return web.json_response({"meta": {"count": page.count}, "links": links("composes", page.count, limit, params),
                              "data": [compose_item(c, with_blueprint=True) for c in page.items]})


async def fixup_blueprint(request: web.Request) -> web.Response:
    """Upstream applies the compliance policy's lint fixes. osbuildd has no compliance service, so a
    blueprint without a policy has nothing to fix (a new, equal version, as upstream saves one);
    one with a policy is refused with a clear error."""
    bp = await _get(request)
    openscap = ((bp.body or {}).get("customizations") or {}).get("openscap") if isinstance(bp.body, dict) else None
    if isinstance(openscap, dict) and openscap.get("policy_id"):
        raise ImageBuilderError(400, "no compliance service is configured: compliance policies cannot be "
                                     "linted or fixed")
    await store(request).update_blueprint(org(request), bp.id, bp.name, bp.body, description=bp.description,
                                          service_snapshots=bp.service_snapshots)
    return web.Response(status=200)


def add_routes(app: web.Application) -> None:
    for prefix in PREFIXES:
        r = app.router
        r.add_get(f"{prefix}/blueprints", list_blueprints)
        r.add_post(f"{prefix}/blueprints", create_blueprint)
        r.add_get(f"{prefix}/blueprints/{{id}}", get_blueprint)
        r.add_put(f"{prefix}/blueprints/{{id}}", update_blueprint)
        r.add_delete(f"{prefix}/blueprints/{{id}}", delete_blueprint)
        r.add_get(f"{prefix}/blueprints/{{id}}/export", export_blueprint)
        r.add_post(f"{prefix}/blueprints/{{id}}/compose", compose_blueprint)
        r.add_get(f"{prefix}/blueprints/{{id}}/composes", blueprint_composes)
        r.add_post(f"{prefix}/experimental/blueprints/{{id}}/fixup", fixup_blueprint)
