"""``/version``, ``/ready``, ``/openapi.json`` (and the bare ``/status``, ``/ready``, ``/openapi.json``)."""

from __future__ import annotations

from aiohttp import web

from osbuildd import __version__
from osbuildd.imagebuilder.composer import ComposerError

from .context import PREFIXES, ImageBuilderError, composer
from .validation import spec, spec_json


async def version(request: web.Request) -> web.Response:
    return web.json_response({"version": str(spec()["info"]["version"]), "build_commit": __version__,
                              "build_time": ""})


async def ready(request: web.Request) -> web.Response:
    """Ready when the composer answers (upstream: composer's ``GET /openapi`` is 200)."""
    try:
        await composer(request).ready()
    except ComposerError as e:
        raise ImageBuilderError(500, f"Failed to contact osbuild-composer: {e.reason}") from None
    return web.json_response({"readiness": "ready"})


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=spec_json(), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/status", version)
    app.router.add_get("/ready", ready)
    app.router.add_get("/openapi.json", openapi_json)
    for prefix in PREFIXES:
        app.router.add_get(f"{prefix}/version", version)
        app.router.add_get(f"{prefix}/ready", ready)
        app.router.add_get(f"{prefix}/openapi.json", openapi_json)
