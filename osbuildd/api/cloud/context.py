"""What the Cloud API's handlers share: the services, the caller, the compose it may see."""

from __future__ import annotations

import uuid

from aiohttp import web

from osbuildd.api import identity
from osbuildd.compose import Compose, ComposeNotFound
from osbuildd.services import Services

from .errors import COMPOSE_NOT_FOUND, INVALID_COMPOSE_ID, CloudError

SERVICES = web.AppKey("cloud_services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def compose_id(request: web.Request, name: str = "id") -> str:
    """The ``{id}`` path parameter, checked to be a UUID (else 400 id 14)."""
    raw = request.match_info[name]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise CloudError(INVALID_COMPOSE_ID, f"{raw!r} is not a UUID") from None


async def visible_compose(request: web.Request, name: str = "id") -> Compose:
    """The compose the path names, if the caller may see it (upstream's EnsureJobChannel: another
    tenant's compose is "not found", id 15, the same answer as a compose that does not exist)."""
    cid = compose_id(request, name)
    try:
        c = await services(request).compose.get(cid)
    except ComposeNotFound:
        raise CloudError(COMPOSE_NOT_FOUND, f"compose {cid} not found") from None
    if not identity.of(request).sees(c.channel):
        raise CloudError(COMPOSE_NOT_FOUND, f"compose {cid} not found")
    return c


async def visible_images(request: web.Request, name: str = "id") -> tuple[str, list[Compose]]:
    """The Cloud compose the path names and its images, one Compose per image request (a compose
    of several image requests has several). The route modules read per-image data through this."""
    c = await visible_compose(request, name)
    return c.id, [c]
