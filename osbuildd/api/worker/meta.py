"""``GET /status``, ``GET /openapi``, ``GET /errors/{id}``."""

from __future__ import annotations

import uuid

from aiohttp import web

from .context import base
from .errors import BY_ID, ERROR_NOT_FOUND, INVALID_ERROR_ID, WorkerError, error_body
from .validation import spec_json


async def status(request: web.Request) -> web.Response:
    return web.json_response({"href": f"{base(request)}/status", "id": "status", "kind": "Status", "status": "OK"})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=spec_json(), content_type="application/json")


async def get_error(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    try:
        error_id = int(raw)
    except ValueError:
        raise WorkerError(INVALID_ERROR_ID, f"{raw!r} is not an integer") from None
    if error_id not in BY_ID:
        raise WorkerError(ERROR_NOT_FOUND, f"no error with id {error_id}")
    return web.json_response(error_body(base(request), error_id, uuid.uuid4().hex))


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/status", status)
    app.router.add_get(f"{prefix}/openapi", openapi)
    app.router.add_get(f"{prefix}/errors/{{id}}", get_error)
