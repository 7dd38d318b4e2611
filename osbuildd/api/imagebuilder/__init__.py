"""The image-builder service API v1 (image-builder-crc's ``/api/image-builder/v1`` and ``/v1.0``):
a multi-tenant image service with blueprints, quotas and distributions in front of a composer.

One aiohttp application: the error middleware outermost (``errors``: image-builder's
``{"errors":[...]}`` shape, plain text for the identity library's refusals), then ``X-Rh-Identity``
and ``allowed_org_ids`` (``errors.require_identity``; ``openapi.json`` and the bare ``/status``,
``/ready``, ``/openapi.json`` exempt), then request validation against the served spec
(``validation``), then the handlers by resource: ``meta``, ``distributions``, ``composes``,
``blueprints``, ``oscap``, and osbuildd's ``artifacts`` (logs, download, events). Every store call
takes the caller's org id.

What it opens while it runs (``cleanup_ctx``): the image-builder store on the daemon's database,
the distributions directory and allow file (read off the loop), the quota file, and the composer:
the in-process compose service (``[image_builder] osbuild_url`` empty) or a composer's Cloud API.
A Composer set under ``INJECTED_COMPOSER`` before start is used instead (tests, embeddings).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from osbuildd.api import metrics
from osbuildd.imagebuilder.composer import Composer
from osbuildd.imagebuilder.distributions import DistributionRegistry
from osbuildd.imagebuilder.quotas import QuotaFile
from osbuildd.imagebuilder.store import SQLiteImageBuilderStore
from osbuildd.services import Services

from . import artifacts, blueprints, composes, distributions, meta, oscap
from .context import (
    COMPOSER,
    DISTROS,
    IDENTITY,
    INJECTED_COMPOSER,
    PREFIXES,
    QUOTAS,
    SERVICES,
    STORE,
    ImageBuilderError,
)
from .errors import imagebuilder_errors, require_identity
from .validation import OPERATIONS, operations, validate_request

__all__ = ["INJECTED_COMPOSER", "PREFIXES", "SERVICES", "ImageBuilderError", "create_app", "imagebuilder_errors"]


def _make_composer(services: Services) -> Composer:
    cfg = services.config.image_builder
    if cfg.osbuild_url:   # a composer's Cloud API over HTTPS (imported here: it brings an HTTP client)
        from osbuildd.imagebuilder.remote import RemoteComposer
        return RemoteComposer(cfg)
    from osbuildd.imagebuilder.local import LocalComposer
    return LocalComposer(services.config, services.compose, services.depsolver, services.distros)


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
    for module in (meta, distributions, composes, artifacts, blueprints, oscap):
        module.add_routes(app)
    app.cleanup_ctx.append(_open)
    metrics.install(app, services, "imagebuilder", _org_id)
    return app


def _org_id(request: web.Request) -> str:
    """The metrics' tenant label: the caller's organisation, as upstream's."""
    ident = request.get(IDENTITY)
    return ident.org_id if ident is not None else ""
