"""``POST /compose``, ``GET /composes``, ``GET``/``DELETE /composes/{composeId}``, ``.../metadata``.
(osbuildd's ``.../logs``, ``.../download`` and ``.../events`` are in ``artifacts``.)

A compose goes: quota (403, nothing queued) -> distribution access (400/403) -> the Cloud API request
(``mapping``) -> the composer -> the store. The row is written only once the composer accepted the
compose; a refusal anywhere before stores nothing. Reads check ownership in the store first (another
organisation's compose is 404, before the composer is asked anything).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import structlog
from aiohttp import web

from osbuildd.blueprint.validation import crypt_password, password_is_crypted
from osbuildd.imagebuilder import mapping
from osbuildd.imagebuilder.composer import ComposerError
from osbuildd.imagebuilder.quotas import QuotaExceeded
from osbuildd.imagebuilder.store import ComposeEntry, ComposeNotFound, QuotaGate

from .context import (
    PREFIXES,
    QUOTAS,
    ImageBuilderError,
    composer,
    config,
    distros,
    entitled,
    identity,
    links,
    org,
    paging,
    rfc3339,
    store,
)
from .validation import body

log = structlog.get_logger("osbuildd.imagebuilder")

ORG_LOCKS = web.AppKey("imagebuilder_org_locks", dict)   # org id -> asyncio.Lock (quota check to insert)


def _plain_password_users(ib_request: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's users whose password is given in plain text (not yet crypted)."""
    users = (ib_request.get("customizations") or {}).get("users")
    return [u for u in (users if isinstance(users, list) else [])
            if isinstance(u, dict) and isinstance(u.get("password"), str) and u["password"]
            and not password_is_crypted(u["password"])]


def crypted(ib_request: dict[str, Any]) -> dict[str, Any]:
    """The request as stored: users' plain passwords replaced by their SHA-512 crypt (the stored
    copy is only ever read back redacted; the composer gets the request as sent). Blocking."""
    out = copy.deepcopy(ib_request)
    for user in _plain_password_users(out):
        user["password"] = crypt_password(user["password"])
    return out


def _lock(request: web.Request, org_id: str) -> asyncio.Lock:
    locks: dict[str, asyncio.Lock] = request.app[ORG_LOCKS]
    return locks.setdefault(org_id, asyncio.Lock())


async def check_quota(request: web.Request, org_id: str) -> QuotaGate | None:
    """Refuse an organisation over its quota before anything is sent to the composer; returns the
    same check for the insert, where it holds across daemons sharing the database."""
    quotas = await request.app[QUOTAS].get()
    if quotas is None:
        return None
    window = quotas.quota_for(org_id).window_seconds
    quotas.enforce(org_id, await store(request).count_composes_since(org_id, window))
    return window, lambda count: quotas.enforce(org_id, count)


def test_compose(request: web.Request) -> int | None:
    """``?test=2`` (a finished fake compose) or ``?test=1`` (a failed one) as Weldr's, only with
    ``[image_builder] test_composes``; otherwise (and for any other value) ignored, as upstream."""
    raw = request.query.get("test")
    if not config(request).test_composes or raw not in ("1", "2"):
        return None
    return int(raw)


async def start_compose(request: web.Request, ib_request: dict[str, Any], *, blueprint_id: str | None = None,
                        blueprint_version: int | None = None, blueprint_version_id: str | None = None) -> str:
    """Quota, distribution, mapping, composer, store: the new compose's id."""
    ident, org_id = identity(request), org(request)
    async with _lock(request, org_id):
        gate = await check_quota(request, org_id)
        name = ib_request.get("distribution")
        if not isinstance(name, str):
            raise ImageBuilderError(400, "bootc composes are not supported: the request must name a distribution"
                                    if "bootc" in ib_request else "the request must name a distribution")
        d = distros(request).get_for(name, org_id, entitled(request))
        local = not config(request).osbuild_url   # the in-process composer builds only what osbuildd can
        cloud = mapping.cloud_compose_request(ib_request, d, config(request), blueprint_id=blueprint_id,
                                              blueprint_version=blueprint_version, check_buildable=local,
                                              subscription=not local)
        # hashing costs milliseconds of CPU: off the loop, and only when there is a password to hash
        stored = await asyncio.to_thread(crypted, ib_request) if _plain_password_users(ib_request) else ib_request
        try:
            compose_id = await composer(request).compose(cloud, org_id=org_id, test=test_compose(request))
        except ComposerError as e:
            raise mapping.composer_refusal(e) from None
        client_id = ib_request.get("client_id")
        try:
            await store(request).insert_compose(
                org_id, compose_id, stored, account_number=ident.account_number or None,
                email=ident.email or None, image_name=ib_request.get("image_name"),
                client_id=client_id if isinstance(client_id, str) else None,
                blueprint_version_id=blueprint_version_id, quota=gate)
        except QuotaExceeded:
            # another daemon's compose of this organisation took the last slot meanwhile
            log.warning("compose over quota at insert: not recorded", org_id=org_id, compose_id=compose_id)
            raise
    log.info("compose started", org_id=org_id, compose_id=compose_id, distribution=name)
    return compose_id


async def compose_image(request: web.Request) -> web.Response:
    ib_request = dict(body(request))
    ib_request.setdefault("client_id", "api")   # the spec's default (upstream's validator fills it in)
    compose_id = await start_compose(request, ib_request)
    return web.json_response({"id": compose_id}, status=201)


def compose_item(c: ComposeEntry, *, with_blueprint: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {"id": c.id, "request": mapping.redacted(c.request), "created_at": rfc3339(c.created_at)}
    if c.image_name is not None:
        item["image_name"] = c.image_name
    if c.client_id is not None:
        item["client_id"] = c.client_id
    if with_blueprint or c.blueprint_id is not None:
        item["blueprint_id"], item["blueprint_version"] = c.blueprint_id, c.blueprint_version
    return item


async def list_composes(request: web.Request) -> web.Response:
    limit, offset = paging(request)
    page = await store(request).list_composes(org(request), limit=limit, offset=offset,
                                              ignore_image_types=request.query.getall("ignoreImageTypes", []))
    return web.json_response({"meta": {"count": page.count}, "links": links("composes", page.count, limit),
                              "data": [compose_item(c) for c in page.items]})


async def owned(request: web.Request) -> ComposeEntry:
    """The organisation's compose the path names; 404 as upstream words it otherwise."""
    cid = request.match_info["composeId"]
    try:
        return await store(request).get_compose(org(request), cid)
    except ComposeNotFound as e:
        raise ImageBuilderError(404, f"Compose entry {cid} not found {e.reason}") from None


def _composer_failure(e: ComposerError, what: str) -> ImageBuilderError:
    if e.status == 404:
        return ImageBuilderError(404, f"{e.reason}: {e.details}" if e.details else e.reason)
    return ImageBuilderError(500, f"Failed querying compose {what} (code {e.status}): {e.reason}")


async def compose_status(request: web.Request) -> web.Response:
    entry = await owned(request)
    try:
        cloud = await composer(request).status(entry.id)
    except ComposerError as e:
        raise _composer_failure(e, "status") from None
    return web.json_response(mapping.compose_status(cloud, entry.request))


async def delete_compose(request: web.Request) -> web.Response:
    """Upstream deletes in the database directly: its 404 is the store's own wording."""
    try:
        await store(request).delete_compose(org(request), request.match_info["composeId"])
    except ComposeNotFound as e:
        raise ImageBuilderError(404, e.reason) from None
    return web.Response(status=200)


_PACKAGE_KEYS = ("arch", "epoch", "name", "release", "sigmd5", "signature", "type", "version")


async def compose_metadata(request: web.Request) -> web.Response:
    entry = await owned(request)
    try:
        cloud = await composer(request).metadata(entry.id)
    except ComposerError as e:
        raise _composer_failure(e, "metadata") from None
    packages = [{k: p[k] for k in _PACKAGE_KEYS if k in p} for p in cloud.get("packages") or []
                if isinstance(p, dict)]
    out: dict[str, Any] = {"packages": packages}
    if cloud.get("ostree_commit") is not None:
        out["ostree_commit"] = cloud["ostree_commit"]
    return web.json_response(out)


def add_routes(app: web.Application) -> None:
    app[ORG_LOCKS] = {}
    for prefix in PREFIXES:
        app.router.add_post(f"{prefix}/compose", compose_image)
        app.router.add_get(f"{prefix}/composes", list_composes)
        app.router.add_get(f"{prefix}/composes/{{composeId}}", compose_status)
        app.router.add_delete(f"{prefix}/composes/{{composeId}}", delete_compose)
        app.router.add_get(f"{prefix}/composes/{{composeId}}/metadata", compose_metadata)
