"""The Cloud API v2 (osbuild-composer's ``/api/image-builder-composer/v2``).

Placeholder until its issue lands: a liveness route, and every other route answers 501 in the
Cloud API's upstream error shape so clients fail clearly instead of hanging or misparsing.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from osbuildd import __version__

BASE = "/api/image-builder-composer/v2"
NOT_IMPLEMENTED_ID = 10000  # upstream "unspecified" internal error id


async def status(request: web.Request) -> web.Response:
    return web.json_response({"status": "OK", "api": "cloud", "version": __version__, "implemented": False})


async def not_implemented(request: web.Request) -> web.Response:
    body = {
        "kind": "Error",
        "id": str(NOT_IMPLEMENTED_ID),
        "href": f"{BASE}/errors/{NOT_IMPLEMENTED_ID}",
        "code": f"IMAGE-BUILDER-COMPOSER-{NOT_IMPLEMENTED_ID}",
        "reason": "not implemented yet",
        "operation_id": uuid.uuid4().hex,
        "details": f"{request.method} {request.path} is not implemented by this osbuildd yet",
    }
    return web.Response(status=501, text=json.dumps(body), content_type="application/json")


def create_app(services: Any) -> web.Application:
    app = web.Application()
    app["services"] = services
    app.router.add_get("/status", status)
    app.router.add_route("*", "/{tail:.*}", not_implemented)
    return app
