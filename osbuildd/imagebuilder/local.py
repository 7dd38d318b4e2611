"""The daemon's own compose service as image-builder's composer, in process (no HTTP hop).

Each method answers what the Cloud API v2 (``osbuildd.api.cloud``) answers over HTTP for the same
request, made by the same code (``osbuildd.compose.cloud``): the request body checked against the
spec (400 id 30), translated and enqueued as ``POST /compose`` does, the ComposeStatus,
ComposeMetadata, DistributionDetails and SearchPackagesResponse as their routes render them. A
refusal is a :class:`ComposerError` with the Cloud API's status and error object (a fresh operation
id, logged with it). A failure no Cloud route translates becomes what the Cloud API's error
middleware makes of it (a service error's 42/21, anything else a logged 500 id 10000).

Visibility: a compose is filed under channel ``org-<org_id>``; status and metadata see every
compose, as the Cloud API on a listener without per-tenant isolation does. The image-builder layer
checks that a compose is the caller's in its own store before it asks.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from osbuildd.compose import ComposeService, ComposeState
from osbuildd.compose.cloud import distributions, lookup, metadata, packages, status, validation
from osbuildd.compose.cloud.errors import RESOURCE_NOT_FOUND, UNSPECIFIED, VALIDATION, CloudRequestError
from osbuildd.compose.cloud.request import submit
from osbuildd.config import Config
from osbuildd.depsolve import Depsolver
from osbuildd.distro import Distros
from osbuildd.errors import ServiceError
from osbuildd.log import get_logger

from .composer import JSON, ComposerError, Download

__all__ = ["LocalComposer"]

log = get_logger("osbuildd.imagebuilder.composer")
T = TypeVar("T")
# what the Cloud API's error middleware answers for an error nothing translated
INTERNAL_REASON = "internal error, see the daemon log"
_SERVICE_IDS = {400: 42, 404: RESOURCE_NOT_FOUND}


def _everyone(channel: str) -> bool:
    return True


def _refusal(e: CloudRequestError) -> ComposerError:
    operation_id = uuid.uuid4().hex
    level = log.error if e.status >= 500 else log.info
    level("composer refused", error_id=e.error_id, status=e.status, operation_id=operation_id, details=e.details)
    return ComposerError(e.status, e.body(operation_id))


def _as_json(value: JSON) -> Any:
    """``value`` as the Cloud API would have parsed it off the wire: a copy of plain JSON types (the
    composer keeps the request; the caller's dict must not be kept or changed)."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as e:
        raise CloudRequestError(VALIDATION, f"request body has an error: failed to decode request body: {e}") from None


class LocalComposer:
    """The :class:`~osbuildd.imagebuilder.composer.Composer` over the daemon's own services."""

    def __init__(self, config: Config, compose: ComposeService, depsolver: Depsolver, distros: Distros) -> None:
        self.config, self.compose_service, self.depsolver, self.distros = config, compose, depsolver, distros

    async def _answer(self, work: Awaitable[T]) -> T:
        """``work``'s result; its refusal (or failure) as the Cloud API's error answer."""
        try:
            return await work
        except CloudRequestError as e:
            raise _refusal(e) from None
        except ServiceError as e:
            raise _refusal(CloudRequestError(_SERVICE_IDS.get(e.kind.http_status, UNSPECIFIED), e.reason)) from None
        except Exception:
            log.exception("in-process composer failed")
            raise _refusal(CloudRequestError(UNSPECIFIED, INTERNAL_REASON)) from None

    async def ready(self) -> None:
        """In process: always there."""

    async def _body(self, template: str, value: JSON) -> dict[str, Any]:
        body = _as_json(value)
        validation.check_body(await validation.body_validator(template), body)
        if not isinstance(body, dict):
            raise CloudRequestError(VALIDATION, "the request body must be an object")
        return body

    async def compose(self, request: JSON, *, org_id: str, test: int | None = None) -> str:
        async def run() -> str:
            body = await self._body("/compose", request)
            return await submit(self.compose_service, self.config, body, f"org-{org_id}", test=test)
        return await self._answer(run())

    async def logs(self, compose_id: str) -> bytes | None:
        async def run() -> bytes | None:
            _cid, images = await lookup.visible_images(self.compose_service, compose_id, _everyone)
            return await asyncio.to_thread(_read, images[0].log_path)
        return await self._answer(run())

    async def download(self, compose_id: str) -> Download | None:
        """The first image kept in the compose's results, named as the Cloud API's download names it."""
        async def run() -> Download | None:
            cid, images = await lookup.visible_images(self.compose_service, compose_id, _everyone)
            for image in images:
                path = image.image_path if image.state == ComposeState.FINISHED else None
                size = await asyncio.to_thread(_size, path) if path is not None else None
                if path is not None and size is not None:
                    return Download(f"{cid}-{image.image_filename}", size, path=path)
            return None
        return await self._answer(run())

    async def status(self, compose_id: str) -> JSON:
        async def run() -> JSON:
            cid, images, _several = await lookup.visible_statuses(self.compose_service, compose_id, _everyone)
            return status.compose_status(cid, images)
        return await self._answer(run())

    async def metadata(self, compose_id: str) -> JSON:
        async def run() -> JSON:
            cid, images = await lookup.visible_images(self.compose_service, compose_id, _everyone)
            return metadata.compose_metadata(cid, images)
        return await self._answer(run())

    async def distribution(self, name: str) -> JSON:
        async def run() -> JSON:
            return distributions.distribution_details(self.distros, self.config.distros.aliases, name)
        return await self._answer(run())

    async def search_packages(self, request: JSON) -> JSON:
        async def run() -> JSON:
            body = await self._body("/search/packages", request)
            return await packages.search_packages(self.distros, self.depsolver, self.config.cache_dir, body)
        return await self._answer(run())

    async def close(self) -> None:
        """Nothing to release: the services are the daemon's."""


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _size(path: Path) -> int | None:
    """The size of a regular file, None when there is none."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size if path.is_file() else None
