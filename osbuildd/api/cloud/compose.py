"""Cloud API: POST /compose — translate, then enqueue (depsolve and manifest run later, as jobs).

The answer comes before any depsolve, as upstream's: an unresolvable package shows up in the
compose's status as a failure with the depsolve's reason. Several image requests are one compose
of several images (``ComposeService.enqueue_group``): all stored in one transaction, or none. The
translation is ``osbuildd.compose.cloud.request``."""

from __future__ import annotations

from aiohttp import web

from osbuildd.api import identity
from osbuildd.compose.cloud.request import submit

from .context import services
from .errors import BASE, CloudError
from .validation import json_body

routes = web.RouteTableDef()


@routes.post(f"{BASE}/compose")
async def post_compose(request: web.Request) -> web.Response:
    body = await json_body(request)   # validated against the spec by the validation middleware
    if not isinstance(body, dict):
        raise CloudError(30, "the request body must be a ComposeRequest object")
    svc = services(request)
    cid = await submit(svc.compose, svc.config, body, identity.of(request).new_channel)
    return web.json_response({"href": f"{BASE}/compose", "id": cid, "kind": "ComposeId"}, status=201)
