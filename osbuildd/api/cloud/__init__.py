"""The Cloud API v2 (osbuild-composer's ``/api/image-builder-composer/v2``).

Placeholder until its issue lands: a liveness route, and every other route answers 501 in the
Cloud API's upstream error shape so clients fail clearly instead of hanging or misparsing. The one
error middleware (``cloud_errors``) is where that shape lives.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from osbuildd import __version__
from osbuildd.errors import ServiceError
from osbuildd.services import Services

BASE = "/api/image-builder-composer/v2"
INTERNAL_ID = 10000  # upstream "unspecified" internal error id
NOT_IMPLEMENTED_ID = INTERNAL_ID
SERVICES = web.AppKey("cloud_services", Services)
log = structlog.get_logger("osbuildd.cloud")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class CloudError(Exception):
    """An answer in the Cloud API's error shape: ``{"kind":"Error","id","href","code","reason",...}``."""

    def __init__(self, status: int, id: int, reason: str, details: str = "") -> None:
        super().__init__(reason)
        self.status, self.id, self.reason, self.details = status, id, reason, details

    def response(self) -> web.Response:
        body = {
            "kind": "Error",
            "id": str(self.id),
            "href": f"{BASE}/errors/{self.id}",
            "code": f"IMAGE-BUILDER-COMPOSER-{self.id}",
            "reason": self.reason,
            "operation_id": uuid.uuid4().hex,
            "details": self.details,
        }
        return web.Response(status=self.status, text=json.dumps(body), content_type="application/json")


@web.middleware
async def cloud_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure of this app in the Cloud API's error shape."""
    try:
        return await handler(request)
    except CloudError as e:
        return e.response()
    except web.HTTPException as e:
        return CloudError(e.status, INTERNAL_ID, e.reason).response()
    except ServiceError as e:
        return CloudError(e.kind.http_status, INTERNAL_ID, e.reason, e.error_id).response()
    except Exception:
        log.exception("cloud handler failed", path=request.path, method=request.method)
        return CloudError(500, INTERNAL_ID, "internal error, see the daemon log").response()


async def status(request: web.Request) -> web.Response:
    return web.json_response({"status": "OK", "api": "cloud", "version": __version__, "implemented": False})


async def not_implemented(request: web.Request) -> web.Response:
    raise CloudError(501, NOT_IMPLEMENTED_ID, "not implemented yet",
                     f"{request.method} {request.path} is not implemented by this osbuildd yet")


def create_app(services: Services) -> web.Application:
    """The Cloud API over the daemon's shared services (it owns nothing that needs closing yet)."""
    app = web.Application(middlewares=[cloud_errors])
    app[SERVICES] = services
    app.router.add_get("/status", status)
    app.router.add_route("*", "/{tail:.*}", not_implemented)
    return app
