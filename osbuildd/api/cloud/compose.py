"""Cloud API: POST /compose — translate, then enqueue (depsolve and manifest run later, as jobs).

The answer comes before any depsolve, as upstream's: an unresolvable package shows up in the
compose's status as a failure with the depsolve's reason. Several image requests are one compose
of several images (``ComposeService.enqueue_group``): all stored in one transaction, or none."""

from __future__ import annotations

import asyncio

from aiohttp import web

from osbuildd.api import identity
from osbuildd.compose import ComposeRequestError

from .context import services
from .errors import BASE, CloudError
from .translate import compose_requests, has_password
from .validation import json_body

routes = web.RouteTableDef()

# the compose service's refusal topics as upstream's error ids
_TOPIC_IDS = {"distro": 4, "arch": 5, "image_type": 6, "repositories": 7, "blueprint": 35, "targets": 38}


def details(e: ComposeRequestError) -> str:
    """"<field>: <message>", the field named once (a blueprint's own messages start with it)."""
    inner = e.field.removeprefix("blueprint.")
    if inner and e.message.startswith(f"{inner}:"):
        return f"blueprint.{e.message}" if e.field != inner else e.message
    return str(e)


@routes.post(f"{BASE}/compose")
async def post_compose(request: web.Request) -> web.Response:
    body = await json_body(request)   # validated against the spec by the validation middleware
    if not isinstance(body, dict):
        raise CloudError(30, "the request body must be a ComposeRequest object")
    svc = services(request)
    channel = identity.of(request).new_channel
    if has_password(body):   # hashing a password costs milliseconds of CPU: not on the loop
        reqs = await asyncio.to_thread(compose_requests, body, svc.config, channel)
    else:
        reqs = compose_requests(body, svc.config, channel)
    try:
        cid = await svc.compose.enqueue_group(reqs)
    except ComposeRequestError as e:
        raise CloudError(_TOPIC_IDS.get(e.topic, 42), details(e)) from None
    return web.json_response({"href": f"{BASE}/compose", "id": cid, "kind": "ComposeId"}, status=201)
