"""Cloud API: POST /compose — translate, then enqueue the graph (depsolve and manifest run as jobs)."""

from __future__ import annotations

from aiohttp import web

from osbuildd.api import identity
from osbuildd.compose import ComposeRequestError

from .context import services
from .errors import BASE, CloudError
from .translate import compose_requests
from .validation import json_body

routes = web.RouteTableDef()

# the compose service's refusal topics as upstream's error ids
_TOPIC_IDS = {"distro": 4, "arch": 5, "image_type": 6, "repositories": 7, "blueprint": 35, "targets": 38}


@routes.post(f"{BASE}/compose")
async def post_compose(request: web.Request) -> web.Response:
    body = await json_body(request)   # validated against the spec by the validation middleware
    if not isinstance(body, dict):
        raise CloudError(30, "the request body must be a ComposeRequest object")
    svc = services(request)
    reqs = compose_requests(body, svc.config, identity.of(request).new_channel)
    try:
        for r in reqs[1:]:   # every image is checked before the first is stored
            await svc.compose.check(r)
        cid = await svc.compose.enqueue(reqs[0])
        for r in reqs[1:]:
            assert r.cloud_group is not None
            r.cloud_group["id"] = cid
            await svc.compose.enqueue(r)
    except ComposeRequestError as e:
        raise CloudError(_TOPIC_IDS.get(e.topic, 42), str(e)) from None
    return web.json_response({"href": f"{BASE}/compose", "id": cid, "kind": "ComposeId"}, status=201)
