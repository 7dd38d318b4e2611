"""The Weldr application: route tables of every resource, and the one error middleware."""

from __future__ import annotations

import platform
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from osbuildd import __version__
from osbuildd.api.weldr import blueprints, bpstore, compose, composefiles, projects, sources, status, upload
from osbuildd.api.weldr.context import WeldrContext
from osbuildd.api.weldr.errors import WeldrError, not_found, service_error
from osbuildd.api.weldr.util import CONTENT_TYPE, WELDR, V, json_response

if TYPE_CHECKING:
    from osbuildd.services import Services

log = structlog.get_logger("osbuildd.weldr")
MAX_VERSION = 1


def _version_ok(request: web.Request) -> bool:
    raw = request.match_info.get("version")
    if raw is None:
        return True
    if not raw.isdigit() or not raw.isascii():
        return False
    handler = request.match_info.route.handler
    return getattr(handler, "weldr_min_version", 0) <= int(raw) <= MAX_VERSION


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def weldr_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Where Weldr's error format lives: every failure becomes ``{"status":false,"errors":[...]}``,
    the services' typed errors with upstream's ids and texts (``errors.service_error``)."""
    try:
        if not _version_ok(request):
            raise not_found()
        return await handler(request)
    except WeldrError as e:
        return json_response(e.body(), status=e.status)
    except web.HTTPMethodNotAllowed:
        return web.Response(status=405, headers={"Content-Type": CONTENT_TYPE})  # upstream: empty body
    except web.HTTPNotFound:
        return json_response(not_found().body(), status=404)
    except web.HTTPRequestEntityTooLarge as e:
        limit = request.app[WELDR].max_body_size
        msg = f"request body is larger than the limit of {limit} bytes ([weldr] max_body_size)"
        log.info("weldr request body too large", path=request.path, detail=e.text)
        return json_response(WeldrError(413, "HTTPError", msg, code=413).body(), status=413)
    except web.HTTPException as e:
        return json_response(WeldrError(e.status, "HTTPError", e.reason, code=e.status).body(), status=e.status)
    except Exception as e:
        mapped = service_error(e)
        if mapped is not None:
            return json_response(mapped.body(), status=mapped.status)
        log.exception("weldr handler failed", path=request.path, method=request.method)
        return json_response(WeldrError(500, "InternalError", "internal error, see the daemon log").body(), 500)


def _host_distro(services: Services) -> str:
    override = services.config.distros.host
    return services.distros.host(override) if override else services.distros.host()


def _worker_arches(services: Services) -> frozenset[str]:
    """The arches a compose can be built for: any the distros know when builds go to remote
    workers; empty (the context then takes the host's) when the local executor builds them."""
    if services.config.builder.local_executor:
        return frozenset()
    distros = services.distros
    return frozenset(a for n in distros.names() for a in distros.get(n).arches)


async def _own_state(app: web.Application) -> AsyncIterator[None]:
    """What this app owns (not shared with other APIs): the compose listing coalescer and its caches."""
    lists = compose.ListCoalescer()
    app[compose.LISTS] = lists
    yield
    lists.close()


def build_app(
    services: Services,
    *,
    host_arch: str | None = None,
    host_distro: str | None = None,
    worker_arches: frozenset[str] | None = None,
    build: str | None = None,
) -> web.Application:
    """The Weldr application over the daemon's shared ``services`` (it creates none of them)."""
    max_body = services.config.weldr.max_body_size
    context = WeldrContext(
        distros=services.distros,
        depsolver=services.depsolver,
        blueprints=services.blueprints,
        sources=services.sources,
        compose=services.compose,
        cache_dir=services.config.state_dir / "cache" / "depsolve",
        host_arch=host_arch or platform.machine(),
        host_distro=host_distro or _host_distro(services),
        worker_arches=_worker_arches(services) if worker_arches is None else worker_arches,
        build=build or __version__,
        max_body_size=max_body,
    )
    app = web.Application(client_max_size=max_body, middlewares=[weldr_errors])
    app[WELDR] = context
    bpstore.watch(services.blueprints)  # other daemons' blueprint changes drop the rendered views
    app.cleanup_ctx.append(_own_state)
    modules = (status, blueprints, compose, composefiles, projects, sources, upload)
    for module in modules:
        _add_versioned(app.router, module.routes)
    for module in modules:
        # after them: a version spelled otherwise (v01) or out of range reaches _version_ok's 404
        app.router.add_routes(module.routes)
    return app


def _add_versioned(router: web.UrlDispatcher, table: web.RouteTableDef) -> None:
    """Each ``/api/v{version}/...`` route also as ``/api/v0/...`` and ``/api/v1/...``: aiohttp
    indexes routes by their path up to the first variable, so these are found at once, where the
    variable one is tried against every route in turn (~20 regex matches a request)."""
    for r in table:
        if not isinstance(r, web.RouteDef) or not r.path.startswith(V + "/"):
            continue
        for n in range(getattr(r.handler, "weldr_min_version", 0), MAX_VERSION + 1):
            web.RouteDef(r.method, f"/api/v{n}{r.path[len(V):]}", r.handler, r.kwargs).register(router)
