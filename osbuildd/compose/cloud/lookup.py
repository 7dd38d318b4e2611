"""The compose a Cloud API path's ``{id}`` names, and its images, for a caller who sees some channels.

``sees(channel)`` says whether the caller may see a compose on ``channel`` (upstream's
EnsureJobChannel): another tenant's compose is "not found", id 15, the same answer as a compose that
does not exist. A compose of several image requests has several images, the first being the one the
id names.
"""

from __future__ import annotations

from collections.abc import Callable

from osbuildd.common.uuids import canonical_uuid
from osbuildd.compose import Compose, ComposeNotFound, ComposeService

from .errors import COMPOSE_NOT_FOUND, INVALID_COMPOSE_ID, CloudRequestError

Sees = Callable[[str], bool]


def compose_id(raw: str) -> str:
    """``raw`` checked to be a UUID (else 400 id 14), in its canonical form."""
    cid = canonical_uuid(raw)
    if cid is None:
        raise CloudRequestError(INVALID_COMPOSE_ID, f"{raw!r} is not a UUID")
    return cid


def _not_found(cid: str) -> CloudRequestError:
    return CloudRequestError(COMPOSE_NOT_FOUND, f"compose {cid} not found")


async def visible_images(svc: ComposeService, raw: str, sees: Sees) -> tuple[str, list[Compose]]:
    """(canonical id, the compose's images, whole): what per-image data (metadata, logs) needs."""
    cid = compose_id(raw)
    images = []
    for image_id in (await svc.groups()).images(cid):
        try:
            images.append(await svc.get(image_id))
        except ComposeNotFound:
            if image_id == cid:
                raise _not_found(cid) from None
    return cid, _visible(cid, images, sees)


async def visible_statuses(svc: ComposeService, raw: str, sees: Sees) -> tuple[str, list[Compose], bool]:
    """visible_images() as the newest snapshot has them (slim: no packages, manifest or result, and
    no SQL while nobody committed): what a status needs. The bool: the id names a compose of several
    images."""
    cid = compose_id(raw)
    snap, groups = await svc.view()
    ids = groups.images(cid)
    images = [c for c in map(snap.find, ids) if c is not None]
    if not images or images[0].id != cid:
        raise _not_found(cid)
    return cid, _visible(cid, images, sees), len(ids) > 1


def _visible(cid: str, images: list[Compose], sees: Sees) -> list[Compose]:
    if not sees(images[0].channel):
        raise _not_found(cid)
    return images
