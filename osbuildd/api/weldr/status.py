"""``/api/status`` and ``distros/list``."""

from __future__ import annotations

from aiohttp import web

from osbuildd.api.weldr.util import V, ctx, json_response, min_version

routes = web.RouteTableDef()


@routes.get("/api/status")
async def status(request: web.Request) -> web.Response:
    return json_response({
        "api": "1", "db_supported": True, "db_version": "0", "schema_version": "0",
        "backend": "osbuild-composer", "build": ctx(request).build, "msgs": [],
    })


@routes.get(V + "/distros/list")
@min_version(1)
async def distros_list(request: web.Request) -> web.Response:
    c = ctx(request)
    arch = request.query.get("arch") or c.host_arch
    return json_response({"distros": c.distro_names(arch)})
