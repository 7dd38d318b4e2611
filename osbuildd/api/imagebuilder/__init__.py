"""The image-builder service API v1 (image-builder-crc's ``/api/image-builder/v1`` and ``/v1.0``):
a multi-tenant image service with blueprints, quotas and distributions in front of a composer.

One aiohttp application: the error middleware outermost (``errors``: image-builder's
``{"errors":[...]}`` shape, plain text for the identity library's refusals), then ``X-Rh-Identity``
and ``allowed_org_ids`` (``errors.require_identity``; ``openapi.json`` and the bare ``/status``,
``/ready``, ``/openapi.json`` exempt), then request validation against the served spec
(``validation``), then the handlers by resource: ``meta``, ``distributions``, ``composes``,
``blueprints``, ``oscap``. Every store call takes the caller's org id.

What it opens while it runs (``cleanup_ctx``): the image-builder store on the daemon's database,
the distributions directory and allow file (read off the loop), the quota file, and the composer:
the in-process compose service (``[image_builder] osbuild_url`` empty) or a composer's Cloud API.
A Composer set under ``INJECTED_COMPOSER`` before start is used instead (tests, embeddings).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from osbuildd.imagebuilder.composer import JSON, Composer, ComposerError
from osbuildd.imagebuilder.distributions import DistributionRegistry
from osbuildd.imagebuilder.quotas import QuotaFile
from osbuildd.imagebuilder.store import SQLiteImageBuilderStore
from osbuildd.services import Services

from . import blueprints, composes, distributions, meta, oscap
from .context import (
    COMPOSER,
    DISTROS,
    INJECTED_COMPOSER,
    PREFIXES,
    QUOTAS,
    SERVICES,
    STORE,
    ImageBuilderError,
)
from .errors import imagebuilder_errors, require_identity
from .validation import OPERATIONS, operations, validate_request

log = structlog.get_logger("osbuildd.imagebuilder")

__all__ = ["INJECTED_COMPOSER", "PREFIXES", "SERVICES", "ImageBuilderError", "create_app", "imagebuilder_errors"]


def _make_composer(services: Services) -> Composer:
    cfg = services.config.image_builder
    # imported here: each is its own part, and the remote one brings an HTTP client
    if cfg.osbuild_url:
        from osbuildd.imagebuilder.remote import RemoteComposer
        return RemoteComposer(cfg)
    try:
        local = importlib.import_module("osbuildd.imagebuilder.local")
    except ModuleNotFoundError:
        # TODO(issue 16): the in-process composer is written beside this layer; until it lands the
        # listener serves everything but builds, which answer 503 saying why
        log.warning("the in-process composer is not available yet: composes answer 503")
        return _NoComposer()
    composer: Composer = local.LocalComposer(services)
    return composer


class _NoComposer:
    """A Composer that refuses every operation (503): the in-process one is not there yet."""

    def _gone(self) -> ComposerError:
        return ComposerError(503, {"reason": "the in-process composer is not available in this build"})

    async def ready(self) -> None:
        raise self._gone()

    async def compose(self, request: JSON, *, org_id: str) -> str:
        raise self._gone()

    async def status(self, compose_id: str) -> JSON:
        raise self._gone()

    async def metadata(self, compose_id: str) -> JSON:
        raise self._gone()

    async def distribution(self, name: str) -> JSON:
        raise self._gone()

    async def search_packages(self, request: JSON) -> JSON:
        raise self._gone()

    async def close(self) -> None:
        return None


async def _open(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    cfg = services.config.image_builder
    app[STORE] = SQLiteImageBuilderStore(services.db)
    app[DISTROS] = await asyncio.to_thread(DistributionRegistry.load, cfg.distributions_dir or None,
                                           cfg.allow_file or None)
    app[QUOTAS] = QuotaFile(cfg.quota_file)
    composer = app.get(INJECTED_COMPOSER) or _make_composer(services)
    app[COMPOSER] = composer
    try:
        yield
    finally:
        await composer.close()


def create_app(services: Services) -> web.Application:
    """The image-builder API over the daemon's shared services."""
    app = web.Application(middlewares=[imagebuilder_errors, require_identity, validate_request],
                          client_max_size=16 * 1024 * 1024)
    app[SERVICES] = services
    app[OPERATIONS] = operations()
    for module in (meta, distributions, composes, blueprints, oscap):
        module.add_routes(app)
    app.cleanup_ctx.append(_open)
    return app
