"""The image-builder service API v1 (``/api/image-builder/v1``, multi-tenant).

Placeholder until its issue lands: upstream's liveness routes (``/status``, ``/ready``, ``.../version``),
and every other route answers 501 in image-builder's error shape (``{"errors": [{title, detail}]}``).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from osbuildd import __version__

PREFIXES = ("/api/image-builder/v1", "/api/image-builder/v1.0")


async def status(request: web.Request) -> web.Response:
    return web.json_response({"version": "1.0", "build_commit": __version__, "build_time": ""})


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"readiness": "ready"})


async def not_implemented(request: web.Request) -> web.Response:
    body = {"errors": [{"title": "501", "detail": f"{request.method} {request.path} is not implemented yet"}]}
    return web.Response(status=501, text=json.dumps(body), content_type="application/json")


def create_app(services: Any) -> web.Application:
    app = web.Application()
    app["services"] = services
    app.router.add_get("/status", status)
    app.router.add_get("/ready", ready)
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/version", status)
        app.router.add_get(f"{prefix}/ready", ready)
    app.router.add_route("*", "/{tail:.*}", not_implemented)
    return app
