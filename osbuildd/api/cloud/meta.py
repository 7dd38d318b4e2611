"""Cloud API: ``/openapi``, ``/errors``, ``/errors/{id}``, ``/distributions``, ``/distributions/{distro}``
(upstream ``handler.go`` GetOpenapi, GetErrorList, GetError, GetDistributionList, GetDistribution).

Image types are named as the Cloud API names them (``aws`` for osbuildd's ``ami``, ``guest-image`` for
``qcow2``, ...; a name the API does not rename stays as it is). ``/distributions/{distro}`` takes the
``[distros.aliases]`` names too; an unknown distribution is 404 id 21 (the spec's "Distribution not
found"; upstream's table has no id of its own for it).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiohttp import web

from osbuildd.distro import Arch, Distro, ImageType, Repository, UnknownDistro

from .context import services
from .errors import (
    BASE,
    BY_ID,
    ERROR_NOT_FOUND,
    INVALID_ERROR_ID,
    RESOURCE_NOT_FOUND,
    TABLE,
    CloudError,
    error_body,
)
from .translate import INTERNAL_TO_API
from .validation import spec_json

routes = web.RouteTableDef()

INVALID_PAGE, INVALID_SIZE = 18, 19
DEFAULT_SIZE = 100
_GO_INT = re.compile(r"[+-]?[0-9]+")   # what Go's strconv.Atoi accepts


def _atoi(raw: str) -> int | None:
    return int(raw) if _GO_INT.fullmatch(raw) else None


def _item(error_id: int, operation_id: str) -> dict[str, str]:
    body = error_body(error_id, operation_id)
    del body["details"]
    return body


@routes.get(BASE + "/openapi")
async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(body=spec_json(), content_type="application/json")


@routes.get(BASE + "/errors")
async def get_error_list(request: web.Request) -> web.Response:
    page, size = 0, DEFAULT_SIZE
    if "page" in request.query:
        p = _atoi(request.query["page"])
        if p is None:
            raise CloudError(INVALID_PAGE, f"page {request.query['page']!r} is not an integer")
        page = p
    if "size" in request.query:
        s = _atoi(request.query["size"])
        if s is None:
            raise CloudError(INVALID_SIZE, f"size {request.query['size']!r} is not an integer")
        size = s
    operation_id = uuid.uuid4().hex
    items: list[dict[str, str]] = []
    if page >= 0 and size >= 0:
        n = len(TABLE)
        items = [_item(e.id, operation_id) for e in TABLE[min(page * size, n):min((page + 1) * size, n)]]
    return web.json_response({"kind": "ErrorList", "page": page, "size": len(items), "total": len(TABLE),
                              "items": items})


@routes.get(BASE + "/errors/{id}")
async def get_error(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    error_id = _atoi(raw)
    if error_id is None:
        raise CloudError(INVALID_ERROR_ID, f"{raw!r} is not an integer")
    if error_id not in BY_ID:
        raise CloudError(ERROR_NOT_FOUND, f"no error with id {error_id}")
    return web.json_response(_item(error_id, uuid.uuid4().hex))


def api_name(internal: str) -> str:
    """The Cloud API's name of an osbuildd image type."""
    return INTERNAL_TO_API.get(internal, internal)


def _blueprint_repository(r: Repository) -> dict[str, Any]:
    out: dict[str, Any] = {"id": r.id}
    if r.name:
        out["name"] = r.name
    if r.baseurl:
        out["baseurls"] = list(r.baseurl)
    if r.metalink:
        out["metalink"] = r.metalink
    if r.mirrorlist:
        out["mirrorlist"] = r.mirrorlist
    if r.gpgkeys:
        out["gpgkeys"] = list(r.gpgkeys)
    out["gpgcheck"], out["repo_gpgcheck"], out["sslverify"] = r.check_gpg, r.check_repogpg, r.sslverify
    if r.priority is not None:
        out["priority"] = r.priority
    if r.module_hotfixes is not None:
        out["module_hotfixes"] = r.module_hotfixes
    return out


@routes.get(BASE + "/distributions")
async def get_distribution_list(request: web.Request) -> web.Response:
    catalogue = services(request).distros
    out: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for name in sorted(catalogue.names()):
        d = catalogue.get(name)
        for arch_name, arch in d.arches.items():
            for it_name in arch.image_type_names():
                repos = [_blueprint_repository(r) for r in arch.repositories if r.for_image_type(it_name)]
                out.setdefault(d.name, {}).setdefault(arch_name, {})[api_name(it_name)] = repos
    return web.json_response(out)


def _image_type_info(it: ImageType) -> dict[str, Any]:
    name = api_name(it.name)
    info: dict[str, Any] = {
        "name": name,
        "aliases": sorted({it.name, *it.aliases} - {name}),
        "filename": it.filename,
        "mime_type": it.mime_type,
        "ostree_ref": "",
        "default_size": it.default_size,
        "boot_mode": str(it.boot_mode),
        "payload_package_sets": ["blueprint"],
        "exports": list(it.exports),
        "required_blueprint_options": [],
        "supported_blueprint_options": sorted(
            ["distro", "packages", "groups", "name", "version", "description"]
            + [f"customizations.{c}" for c in it.supported_customizations]),
    }
    if it.partition_table is not None and it.partition_table.label in ("gpt", "dos"):
        info["partition_type"] = it.partition_table.label
    return info


def _arch_info(arch: Arch, image_types: list[str]) -> dict[str, Any]:
    types = {}
    for it in arch.image_types.values():
        if image_types and not ({api_name(it.name), it.name, *it.aliases} & set(image_types)):
            continue
        types[api_name(it.name)] = _image_type_info(it)
    return {"name": arch.name, "image_types": types}


def _distribution(request: web.Request, raw: str) -> Distro:
    svc = services(request)
    name = svc.config.distros.aliases.get(raw, raw)
    try:
        return svc.distros.get(name)
    except UnknownDistro:
        raise CloudError(RESOURCE_NOT_FOUND, f"distribution {raw!r} not found") from None


@routes.get(BASE + "/distributions/{distro}")
async def get_distribution(request: web.Request) -> web.Response:
    d = _distribution(request, request.match_info["distro"])
    arches = request.query.getall("architecture", [])
    image_types = request.query.getall("image_type", [])
    body: dict[str, Any] = {
        "href": f"{BASE}/distributions/{d.name}", "id": d.name, "kind": "DistributionDetails",
        "name": d.name, "codename": d.codename, "releasever": d.release_version, "os_version": d.os_version,
        "module_platform_id": d.module_platform_id, "product": d.product,
        "architectures": {name: _arch_info(a, image_types) for name, a in d.arches.items()
                          if not arches or name in arches},
    }
    return web.json_response(body)
