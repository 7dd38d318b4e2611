"""The image-builder service API v1 (``/api/image-builder/v1``, multi-tenant).

Placeholder until its issue lands: upstream's liveness routes (``/status``, ``/ready``, ``.../version``),
and every other route answers 501 in image-builder's error shape (``{"errors": [{title, detail}]}``),
which lives in its one error middleware (``imagebuilder_errors``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from osbuildd import __version__
from osbuildd.errors import ServiceError
from osbuildd.services import Services

PREFIXES = ("/api/image-builder/v1", "/api/image-builder/v1.0")
SERVICES = web.AppKey("imagebuilder_services", Services)
log = structlog.get_logger("osbuildd.imagebuilder")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ImageBuilderError(Exception):
    """An answer in image-builder's error shape: ``{"errors": [{"title": <status>, "detail": ...}]}``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail

    def response(self) -> web.Response:
        body = {"errors": [{"title": str(self.status), "detail": self.detail}]}
        return web.Response(status=self.status, text=json.dumps(body), content_type="application/json")


@web.middleware
async def imagebuilder_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure of this app in image-builder's error shape."""
    try:
        return await handler(request)
    except ImageBuilderError as e:
        return e.response()
    except web.HTTPException as e:
        return ImageBuilderError(e.status, e.reason).response()
    except ServiceError as e:
        return ImageBuilderError(e.kind.http_status, e.reason).response()
    except Exception:
        log.exception("image-builder handler failed", path=request.path, method=request.method)
        return ImageBuilderError(500, "internal error, see the daemon log").response()


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
