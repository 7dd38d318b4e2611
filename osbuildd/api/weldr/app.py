"""The Weldr application: route tables of every resource, and the one error middleware."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from osbuildd import __version__
from osbuildd.api.weldr import blueprints, compose, composefiles, projects, sources, status, upload
from osbuildd.api.weldr.context import WeldrContext
from osbuildd.api.weldr.errors import WeldrError, not_found
from osbuildd.api.weldr.util import CONTENT_TYPE, SERVICES, WELDR, V, json_response
from osbuildd.distro.sourcestore import SourceStore

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


@web.middleware
async def weldr_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Where Weldr's error format lives: every failure becomes ``{"status":false,"errors":[...]}``."""
    try:
        if not _version_ok(request):
            raise not_found()
        resp = await handler(request)
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
    except Exception:
        log.exception("weldr handler failed", path=request.path, method=request.method)
        return json_response(WeldrError(500, "InternalError", "internal error, see the daemon log").body(), 500)
    return resp


def _default_distros() -> Any:
    import osbuildd.distro as distros

    return distros


def _default_depsolver() -> Any:
    import osbuildd.depsolve as depsolve

    return depsolve


def _default_blueprint_store(services: Any) -> Any:
    store = getattr(services, "blueprints", None)
    if store is not None:
        return store
    from osbuildd.blueprint.store import BlueprintStore

    store = BlueprintStore(services.db)
    services.blueprints = store  # one store per database (it caches); other APIs share it
    return store


def build_app(
    services: Any,
    *,
    distros: Any = None,
    depsolver: Any = None,
    host_arch: str | None = None,
    host_distro: str | None = None,
    worker_arches: frozenset[str] | None = None,
    build: str | None = None,
) -> web.Application:
    config = getattr(services, "config", None)
    weldr_cfg = getattr(config, "weldr", None)
    max_body = int(getattr(weldr_cfg, "max_body_size", 16 * 1024 * 1024))
    state_dir = Path(getattr(config, "state_dir", "/var/lib/osbuildd"))
    distros = distros or _default_distros()
    if not host_distro:
        override = getattr(getattr(config, "distros", None), "host", "")
        host_distro = distros.host(override) if override else distros.host()
    builder = getattr(config, "builder", None)
    if worker_arches is None and builder is not None and not getattr(builder, "local_executor", True):
        # builds go to remote workers, which may serve any arch the distros know
        worker_arches = frozenset(a for n in distros.names() for a in distros.get(n).arches)
    kwargs: dict[str, Any] = {}
    if host_arch:
        kwargs["host_arch"] = host_arch
    if worker_arches:
        kwargs["worker_arches"] = worker_arches
    context = WeldrContext(
        distros=distros,
        depsolver=depsolver or _default_depsolver(),
        blueprints=_default_blueprint_store(services),
        sources=getattr(services, "sources", None) or SourceStore(services.db),
        compose=getattr(services, "compose", None),
        cache_dir=state_dir / "cache" / "depsolve",
        host_distro=host_distro,
        build=build or __version__,
        max_body_size=max_body,
        **kwargs,
    )
    app = web.Application(client_max_size=max_body, middlewares=[weldr_errors])
    app[SERVICES] = services
    app[WELDR] = context
    app[compose.LISTS] = compose.ListCoalescer()
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
