"""The worker API (``/api/worker/v1``): remote osbuild-workers take jobs from the job store.

Placeholder until its issue lands: upstream's ``GET <base>/status``, and every other route answers 501
in the worker API's upstream error shape (which lives in its one error middleware, ``worker_errors``).
The real one dequeues with ``owner=<worker id>`` so the heartbeat watcher covers its jobs (see
docs/CONTRACTS.md "Job queue").
"""

from __future__ import annotations

import json
import uuid

from aiohttp import web

from osbuildd.api.middleware import APIError, error_middleware
from osbuildd.services import Services

BASE = "/api/worker/v1"
INTERNAL_ID = 1000  # upstream's first internal (500-class) worker error id
NOT_IMPLEMENTED_ID = INTERNAL_ID
SERVICES = web.AppKey("worker_services", Services)


class WorkerError(APIError):
    """An answer in the worker API's error shape (``kind``, ``id``, ``code``, ``reason``, ``message``...)."""

    def __init__(self, status: int, id: int, reason: str, details: str = "") -> None:
        super().__init__(reason)
        self.status, self.id, self.reason, self.details = status, id, reason, details

    def response(self) -> web.Response:
        body = {
            "kind": "Error",
            "id": str(self.id),
            "href": f"{BASE}/errors/{self.id}",
            "code": f"IMAGE-BUILDER-WORKER-{self.id}",
            "reason": self.reason,
            "message": self.reason,
            "operation_id": uuid.uuid4().hex,
            "details": self.details,
        }
        return web.Response(status=self.status, text=json.dumps(body), content_type="application/json")


worker_errors = error_middleware(
    "worker_api", lambda status, reason, error_id: WorkerError(status, INTERNAL_ID, reason, error_id))


async def status(request: web.Request) -> web.Response:
    return web.json_response({"href": f"{BASE}/status", "id": "status", "kind": "Status", "status": "OK"})


async def not_implemented(request: web.Request) -> web.Response:
    raise WorkerError(501, NOT_IMPLEMENTED_ID, "not implemented yet",
                      f"{request.method} {request.path} is not implemented by this osbuildd yet")


def create_app(services: Services) -> web.Application:
    """The worker API over the daemon's shared services (it owns nothing that needs closing yet)."""
    app = web.Application(middlewares=[worker_errors])
    app[SERVICES] = services
    app.router.add_get(f"{BASE}/status", status)
    app.router.add_route("*", "/{tail:.*}", not_implemented)
    return app
