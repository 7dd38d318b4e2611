"""What the Cloud API's handlers share: the services, the caller, the compose it may see."""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from osbuildd.api import identity
from osbuildd.compose import Compose, ComposeNotFound
from osbuildd.services import Services

from .errors import COMPOSE_NOT_FOUND, INVALID_COMPOSE_ID, CloudError

SERVICES = web.AppKey("cloud_services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def compose_id(request: web.Request, name: str = "id") -> str:
    """The ``{id}`` path parameter, checked to be a UUID (else 400 id 14), in its canonical form."""
    raw = request.match_info[name]
    if _CANONICAL.fullmatch(raw):
        return raw
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
    """The Cloud compose the path names and its images, whole, one Compose per image request (a
    compose of several image requests has several, the first being the one the id names). The
    route modules read per-image data through this; another tenant's compose is 404 id 15."""
    cid = compose_id(request, name)
    svc = services(request).compose
    images = []
    for image_id in (await svc.groups()).images(cid):
        try:
            images.append(await svc.get(image_id))
        except ComposeNotFound:
            if image_id == cid:
                raise CloudError(COMPOSE_NOT_FOUND, f"compose {cid} not found") from None
    return cid, _visible(request, cid, images)


async def visible_statuses(request: web.Request, name: str = "id") -> tuple[str, list[Compose], bool]:
    """visible_images() as the newest snapshot has them (slim: no packages, manifest or result,
    and no SQL while nobody committed): what a status needs. The bool: the id names a compose of
    several images."""
    cid = compose_id(request, name)
    snap, groups = await services(request).compose.view()
    ids = groups.images(cid)
    images = [c for c in map(snap.find, ids) if c is not None]
    if not images or images[0].id != cid:
        raise CloudError(COMPOSE_NOT_FOUND, f"compose {cid} not found")
    return cid, _visible(request, cid, images), len(ids) > 1


def _visible(request: web.Request, cid: str, images: list[Compose]) -> list[Compose]:
    if not identity.of(request).sees(images[0].channel):
        raise CloudError(COMPOSE_NOT_FOUND, f"compose {cid} not found")
    return images
