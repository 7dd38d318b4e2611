"""Cloud API: ``POST /depsolve/blueprint`` and ``POST /search/packages`` (upstream ``depsolve.go``,
``search.go``): the body read here, answered by ``osbuildd.compose.cloud.packages`` through the daemon's
shared depsolver.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from osbuildd.compose.cloud import packages

from .context import services
from .errors import BASE, BODY_DECODING, VALIDATION, CloudError

routes = web.RouteTableDef()


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CloudError(BODY_DECODING, str(e)) from None
    if not isinstance(body, dict):
        raise CloudError(VALIDATION, "request body must be an object")
    return body


@routes.post(BASE + "/depsolve/blueprint")
async def depsolve_blueprint(request: web.Request) -> web.Response:
    body = await _body(request)
    svc = services(request)
    return web.json_response(await packages.depsolve_blueprint(svc.distros, svc.depsolver, svc.config.cache_dir, body))


@routes.post(BASE + "/search/packages")
async def search_packages(request: web.Request) -> web.Response:
    body = await _body(request)
    svc = services(request)
    return web.json_response(await packages.search_packages(svc.distros, svc.depsolver, svc.config.cache_dir, body))
