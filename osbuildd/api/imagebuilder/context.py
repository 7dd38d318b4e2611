"""What the image-builder API's handlers share: the app keys of what the app opens, the caller's
identity, the one error type of its answers, and upstream's list links."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from osbuildd.api.middleware import APIError
from osbuildd.config import ImageBuilderConfig
from osbuildd.imagebuilder.composer import Composer
from osbuildd.imagebuilder.distributions import DistributionRegistry
from osbuildd.imagebuilder.identity import Identity
from osbuildd.imagebuilder.quotas import QuotaFile
from osbuildd.imagebuilder.store import ImageBuilderStore
from osbuildd.services import Services

PREFIXES = ("/api/image-builder/v1", "/api/image-builder/v1.0")
LINK_BASE = "/api/image-builder/v1.0"     # upstream's links use the spec's full version
DEFAULT_LIMIT = 100

SERVICES = web.AppKey("imagebuilder_services", Services)
STORE: web.AppKey[ImageBuilderStore] = web.AppKey("imagebuilder_store")
DISTROS = web.AppKey("imagebuilder_distributions", DistributionRegistry)
QUOTAS = web.AppKey("imagebuilder_quotas", QuotaFile)
COMPOSER: web.AppKey[Composer] = web.AppKey("imagebuilder_composer")
# a Composer a test (or an embedding) sets before the app starts: used instead of making one
INJECTED_COMPOSER: web.AppKey[Composer] = web.AppKey("imagebuilder_injected_composer")
IDENTITY = web.RequestKey("imagebuilder_identity", Identity)


class ImageBuilderError(APIError):
    """An answer in image-builder's error shape: ``{"errors": [{"title": <status>, "detail": ...}]}``
    (``title`` is the status but for the few answers where upstream writes its own, e.g. 422s)."""

    def __init__(self, status: int, detail: str, *, title: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.title = str(status) if title is None else title

    def response(self) -> web.Response:
        body = {"errors": [{"title": self.title, "detail": self.detail}]}
        return web.Response(status=self.status, text=json.dumps(body), content_type="application/json")


def config(request: web.Request) -> ImageBuilderConfig:
    return request.app[SERVICES].config.image_builder


def store(request: web.Request) -> ImageBuilderStore:
    return request.app[STORE]


def distros(request: web.Request) -> DistributionRegistry:
    return request.app[DISTROS]


def composer(request: web.Request) -> Composer:
    return request.app[COMPOSER]


def identity(request: web.Request) -> Identity:
    """The caller (set by the identity middleware on every route that needs one)."""
    return request[IDENTITY]


def org(request: web.Request) -> str:
    return identity(request).org_id


def entitled(request: web.Request) -> bool:
    return identity(request).is_entitled("rhel")


def int_query(request: web.Request, name: str, default: int) -> int:
    """An integer query parameter (validation checked its syntax and range)."""
    raw = request.query.get(name)
    return default if raw is None else int(raw)


def paging(request: web.Request) -> tuple[int, int]:
    """``limit`` (upstream: 100 unless a positive one is given) and ``offset``."""
    limit = int_query(request, "limit", DEFAULT_LIMIT)
    return (limit if limit > 0 else DEFAULT_LIMIT), max(int_query(request, "offset", 0), 0)


def last_offset(count: int, limit: int) -> int:
    """The offset of the last page of ``count`` items (0 for none), as upstream computes it."""
    if count <= 0 or limit <= 0:
        return 0
    return ((count - 1) // limit) * limit


def links(resource: str, count: int, limit: int, params: dict[str, str] | None = None) -> dict[str, str]:
    """``{first, last}`` as upstream: Go's ``url.Values.Encode`` (keys sorted)."""
    def url(offset: int) -> str:
        values = {**(params or {}), "limit": str(limit), "offset": str(offset)}
        return f"{LINK_BASE}/{resource}?{urlencode(sorted(values.items()))}"

    return {"first": url(0), "last": url(last_offset(count, limit))}


def rfc3339(ts: float) -> str:
    """Go's ``time.RFC3339`` of a UTC timestamp (whole seconds, ``Z``)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
