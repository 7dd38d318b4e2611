"""The worker API (``/api/worker/v1``): remote osbuild-workers take jobs from the job store.

Placeholder until its issue lands: upstream's ``GET <base>/status``, and every other route answers 501
in the worker API's upstream error shape. The real one dequeues with ``owner=<worker id>`` so the
heartbeat watcher covers its jobs (see docs/CONTRACTS.md "Job queue").
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

BASE = "/api/worker/v1"
NOT_IMPLEMENTED_ID = 1000  # upstream's first internal (500-class) worker error id


async def status(request: web.Request) -> web.Response:
    return web.json_response({"href": f"{BASE}/status", "id": "status", "kind": "Status", "status": "OK"})


async def not_implemented(request: web.Request) -> web.Response:
    reason = "not implemented yet"
    body = {
        "kind": "Error",
        "id": str(NOT_IMPLEMENTED_ID),
        "href": f"{BASE}/errors/{NOT_IMPLEMENTED_ID}",
        "code": f"IMAGE-BUILDER-WORKER-{NOT_IMPLEMENTED_ID}",
        "reason": reason,
        "message": reason,
        "operation_id": uuid.uuid4().hex,
        "details": f"{request.method} {request.path} is not implemented by this osbuildd yet",
    }
    return web.Response(status=501, text=json.dumps(body), content_type="application/json")


def create_app(services: Any) -> web.Application:
    app = web.Application()
    app["services"] = services
    app.router.add_get(f"{BASE}/status", status)
    app.router.add_route("*", "/{tail:.*}", not_implemented)
    return app
