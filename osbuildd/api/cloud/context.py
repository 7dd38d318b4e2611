"""What the Cloud API's handlers share: the services, the caller, the compose it may see."""

from __future__ import annotations

import uuid
from typing import Any

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
    return c.id, await images_of(request, c)


def group_of(c: Compose) -> dict[str, Any]:
    """The compose's place in a Cloud compose of several images ({} for a one-image compose)."""
    g = c.request.get("cloud_group")
    return g if isinstance(g, dict) else {}


async def images_of(request: web.Request, c: Compose) -> list[Compose]:
    """Every image of the Cloud compose ``c`` heads, in request order ([c] for one image)."""
    size = int(group_of(c).get("size") or 1)
    if size == 1 or group_of(c).get("id"):
        return [c]
    svc = services(request).compose
    snap = await svc.snapshot()
    members = sorted((m for m in snap.composes() if group_of(m).get("id") == c.id),
                     key=lambda m: int(group_of(m).get("index") or 0))
    return [c] + [await svc.get(m.id) for m in members]
