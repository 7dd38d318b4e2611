"""Cloud API: ``/openapi``, ``/errors``, ``/errors/{id}``, ``/distributions``, ``/distributions/{distro}``
(upstream ``handler.go`` GetOpenapi, GetErrorList, GetError, GetDistributionList, GetDistribution).

The distributions' answers are made by ``osbuildd.compose.cloud.distributions``.
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from osbuildd.compose.cloud import distributions

from .context import services
from .errors import (
    BASE,
    BY_ID,
    ERROR_NOT_FOUND,
    INVALID_ERROR_ID,
    TABLE,
    CloudError,
    error_body,
)
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


@routes.get(BASE + "/distributions")
async def get_distribution_list(request: web.Request) -> web.Response:
    return web.json_response(distributions.distribution_list(services(request).distros))


@routes.get(BASE + "/distributions/{distro}")
async def get_distribution(request: web.Request) -> web.Response:
    svc = services(request)
    return web.json_response(distributions.distribution_details(
        svc.distros, svc.config.distros.aliases, request.match_info["distro"],
        request.query.getall("architecture", []), request.query.getall("image_type", [])))
