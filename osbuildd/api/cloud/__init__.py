"""The Cloud API v2 (osbuild-composer's ``/api/image-builder-composer/v2``).

Placeholder until its issue lands: a liveness route, and every other route answers 501 in the
Cloud API's upstream error shape so clients fail clearly instead of hanging or misparsing. The one
error middleware (``cloud_errors``) is where that shape lives.
"""

from __future__ import annotations

import json
import uuid

from aiohttp import web

from osbuildd import __version__
from osbuildd.api.middleware import APIError, error_middleware
from osbuildd.services import Services

BASE = "/api/image-builder-composer/v2"
INTERNAL_ID = 10000  # upstream "unspecified" internal error id
NOT_IMPLEMENTED_ID = INTERNAL_ID
SERVICES = web.AppKey("cloud_services", Services)


class CloudError(APIError):
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


cloud_errors = error_middleware(
    "cloud", lambda status, reason, error_id: CloudError(status, INTERNAL_ID, reason, error_id))


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
