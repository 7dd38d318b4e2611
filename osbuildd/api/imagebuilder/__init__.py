"""The image-builder service API v1 (``/api/image-builder/v1``, multi-tenant).

Placeholder until its issue lands: upstream's liveness routes (``/status``, ``/ready``, ``.../version``),
and every other route answers 501 in image-builder's error shape (``{"errors": [{title, detail}]}``),
which lives in its one error middleware (``imagebuilder_errors``).
"""

from __future__ import annotations

import json

from aiohttp import web

from osbuildd import __version__
from osbuildd.api.middleware import APIError, error_middleware
from osbuildd.services import Services

PREFIXES = ("/api/image-builder/v1", "/api/image-builder/v1.0")
SERVICES = web.AppKey("imagebuilder_services", Services)


class ImageBuilderError(APIError):
    """An answer in image-builder's error shape: ``{"errors": [{"title": <status>, "detail": ...}]}``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail

    def response(self) -> web.Response:
        body = {"errors": [{"title": str(self.status), "detail": self.detail}]}
        return web.Response(status=self.status, text=json.dumps(body), content_type="application/json")


imagebuilder_errors = error_middleware("imagebuilder", lambda status, reason, _id: ImageBuilderError(status, reason))


async def status(request: web.Request) -> web.Response:
    return web.json_response({"version": "1.0", "build_commit": __version__, "build_time": ""})


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"readiness": "ready"})


async def not_implemented(request: web.Request) -> web.Response:
    raise ImageBuilderError(501, f"{request.method} {request.path} is not implemented yet")


def create_app(services: Services) -> web.Application:
    """The image-builder API over the daemon's shared services (it owns nothing that needs closing yet)."""
    app = web.Application(middlewares=[imagebuilder_errors])
    app[SERVICES] = services
    app.router.add_get("/status", status)
    app.router.add_get("/ready", ready)
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/version", status)
        app.router.add_get(f"{prefix}/ready", ready)
    app.router.add_route("*", "/{tail:.*}", not_implemented)
    return app
