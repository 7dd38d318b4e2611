"""The Cloud API v2 (osbuild-composer's ``/api/image-builder-composer/v2``).

One aiohttp application: the error middleware outermost (every failure in upstream's shape), then
authentication (``osbuildd.api.auth``: mTLS or JWT per ``[cloud]``), then request validation against
the spec (``validation``), then the handlers, grouped by
resource in the modules below, each with its own ``routes`` table.
"""

from __future__ import annotations

from aiohttp import web

from osbuildd import __version__
from osbuildd.api import auth, metrics
from osbuildd.services import Services

from . import artifacts, clone, compose, composes, meta, packages
from .context import SERVICES
from .errors import BASE, cloud_errors
from .validation import OPERATIONS, operations, validate_request

__all__ = ["BASE", "create_app"]

PUBLIC = (f"{BASE}/openapi", f"{BASE}/errors")   # upstream exempts these from JWT


def _public(path: str) -> bool:
    return path == "/status" or any(path == p or path.startswith(p + "/") for p in PUBLIC)


async def status(request: web.Request) -> web.Response:
    return web.json_response({"status": "OK", "api": "cloud", "version": __version__})


def create_app(services: Services) -> web.Application:
    """The Cloud API over the daemon's shared services (it owns nothing that needs closing)."""
    app = web.Application(middlewares=[cloud_errors, *auth.middlewares(services.config.cloud, exempt=_public),
                                       validate_request],
                          client_max_size=16 * 1024 * 1024)
    app[SERVICES] = services
    app[OPERATIONS] = operations()
    app.router.add_get("/status", status)
    for module in (meta, compose, composes, artifacts, packages, clone):
        app.router.add_routes(module.routes)
    metrics.install(app, services, "cloud")   # GET /metrics, behind the same authentication
    return app
