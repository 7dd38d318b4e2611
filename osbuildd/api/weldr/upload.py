"""``upload/*`` and ``compose/uploads/*``: upstream answers 501 with an empty body (v1 only)."""

from __future__ import annotations

from aiohttp import web

from osbuildd.api.weldr.util import CONTENT_TYPE, V, min_version

routes = web.RouteTableDef()


@min_version(1)
async def not_implemented(request: web.Request) -> web.Response:
    return web.Response(status=501, headers={"Content-Type": CONTENT_TYPE})


for method, path in (
    ("POST", "/compose/uploads/schedule/{uuid}"),
    ("DELETE", "/upload/delete/{uuid}"),
    ("GET", "/upload/info/{uuid}"),
    ("GET", "/upload/log/{uuid}"),
    ("POST", "/upload/reset/{uuid}"),
    ("DELETE", "/upload/cancel/{uuid}"),
    ("GET", "/upload/providers"),
    ("POST", "/upload/providers/save"),
    ("DELETE", "/upload/providers/delete/{provider}/{profile}"),
):
    routes.route(method, V + path)(not_implemented)
