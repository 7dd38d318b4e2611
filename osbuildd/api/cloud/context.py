"""What the Cloud API's handlers share: the services, the caller, the compose it may see (found by
``osbuildd.compose.cloud.lookup`` for the caller's identity)."""

from __future__ import annotations

from aiohttp import web

from osbuildd.api import identity
from osbuildd.compose import Compose
from osbuildd.compose.cloud import lookup
from osbuildd.services import Services

SERVICES = web.AppKey("cloud_services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def compose_id(request: web.Request, name: str = "id") -> str:
    """The ``{id}`` path parameter, checked to be a UUID (else 400 id 14), in its canonical form."""
    return lookup.compose_id(request.match_info[name])


async def visible_images(request: web.Request, name: str = "id") -> tuple[str, list[Compose]]:
    """The Cloud compose the path names and its images, whole (``lookup.visible_images``)."""
    return await lookup.visible_images(services(request).compose, request.match_info[name],
                                       identity.of(request).sees)


async def visible_statuses(request: web.Request, name: str = "id") -> tuple[str, list[Compose], bool]:
    """The images as the newest snapshot has them (``lookup.visible_statuses``)."""
    return await lookup.visible_statuses(services(request).compose, request.match_info[name],
                                         identity.of(request).sees)
