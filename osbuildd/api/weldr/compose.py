"""``compose`` routes: start (real or ``?test=1|2``), types, queue/finished/failed/status/info, cancel
and delete. The downloads (log, logs, metadata, results, image) are in composefiles.py."""

from __future__ import annotations

import asyncio
import bisect
import re
import uuid as uuidlib
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from osbuildd.api.weldr import bpstore
from osbuildd.api.weldr.bodies import BodyError, media_type, parse_json, read_body
from osbuildd.api.weldr.composeview import PROVIDER_TARGETS, SETTINGS, entry, error_field, state, uploads
from osbuildd.api.weldr.context import Snapshots, WeldrCompose, WeldrComposes, WeldrContext
from osbuildd.api.weldr.errors import (
    bad_request,
    error_entry,
    not_cancellable,
    not_deletable,
    not_found,
)
from osbuildd.api.weldr.packages import depsolved, repositories
from osbuildd.api.weldr.util import (
    V,
    api_version,
    check_name,
    ctx,
    distro_arch,
    dumps,
    json_response,
)
from osbuildd.blueprint import Blueprint
from osbuildd.compose import ComposeNotFound, ComposeRequest, ComposeStateError, UploadTarget

routes = web.RouteTableDef()
_OSTREE_REF = re.compile(r"^(?:[\w\d][-._\w\d]*/)*[\w\d][-._\w\d]*$")


def _service(request: web.Request) -> WeldrComposes:
    return ctx(request).compose


def _parse_uuid(raw: str) -> str | None:
    try:
        return str(uuidlib.UUID(raw))
    except ValueError:
        return None


async def _lookup(request: web.Request, compose_id: str) -> WeldrCompose | None:
    try:
        return await _service(request).get(compose_id)
    except ComposeNotFound:
        return None


async def existing(request: web.Request, raw: str) -> WeldrCompose:
    """The compose named in the path for the download routes (upstream's two UnknownUUID texts)."""
    cid = _parse_uuid(raw)
    if cid is None:
        raise bad_request("UnknownUUID", f"{raw} is not a valid build uuid")
    compose = await _lookup(request, cid)
    if compose is None:
        raise bad_request("UnknownUUID", f"Compose {cid} doesn't exist")
    return compose


# ---------------------------------------------------------------------------------------------- start


def _targets(upload: object) -> list[UploadTarget]:
    """The v1 ``upload`` object as compose targets; an unknown provider is a decode error (404)."""
    if upload is None:
        return []
    if not isinstance(upload, dict) or upload.get("provider") not in PROVIDER_TARGETS:
        raise not_found()
    provider = upload["provider"]
    settings = upload.get("settings") or {}
    if not isinstance(settings, dict) or set(settings) - SETTINGS[provider]:
        raise not_found()
    name = upload.get("image_name", "")
    if not isinstance(name, str):
        raise not_found()
    return [UploadTarget(name=PROVIDER_TARGETS[provider], image_name=name, options=dict(settings))]


def _check_ostree(ostree: object) -> None:
    if not ostree:
        return
    if not isinstance(ostree, dict):
        raise not_found()
    ref, parent, url = ostree.get("ref", ""), ostree.get("parent", ""), ostree.get("url", "")
    for r in (ref, parent):
        if r and not _OSTREE_REF.match(r):
            raise bad_request("OSTreeOptionsError", f'Invalid ostree ref or commit "{r}"')
    if parent and not url:
        raise bad_request("ManifestCreationFailed",
                          "failed to initialize osbuild manifest: ostree parent ref specified, but no URL to retrieve it")


async def _start_body(request: web.Request) -> dict[str, Any]:
    """The POSTed compose request, shape-checked: anything undecodable is upstream's 404."""
    if media_type(request) != "application/json":
        raise bad_request("MissingPost", "blueprint must be json")
    raw = await read_body(request)
    try:
        body = parse_json(raw)
    except BodyError as e:
        raise not_found() from e  # upstream answers an undecodable compose body with 404
    if not isinstance(body, dict) or not isinstance(body.get("blueprint_name", ""), str) \
            or not isinstance(body.get("compose_type", ""), str):
        raise not_found()
    size = body.get("size", 0) or 0
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise not_found()
    return body


async def _request(c: WeldrContext, bp: Blueprint, body: dict[str, Any],
                   targets: list[UploadTarget]) -> ComposeRequest:
    """The compose request for ``bp``: its distro/arch (or the host's) and the image type, with
    this route's own wording of an unknown one."""
    distro_name = bp.distro or c.host_distro
    arch_name = bp.arch or c.host_arch
    try:
        distro = c.distro(distro_name)
        arch = distro.arch(arch_name)
    except LookupError as e:
        raise bad_request("DistroError", f"Unknown distribution: {distro_name} for arch {arch_name}") from e
    image_type_name = body.get("compose_type", "")
    try:
        image_type = arch.image_type(image_type_name)
    except LookupError as e:
        raise bad_request("ComposeError",
                          f'Failed to get compose type "{image_type_name}": invalid image type: {image_type_name}') from e
    _check_ostree(body.get("ostree"))
    if arch_name not in c.worker_arches:
        raise bad_request("ComposePushErrored", f"No worker for arch '{arch_name}'  available")
    repos = await repositories(c, distro, arch_name)
    system = c.system_repos(distro, arch_name)
    return ComposeRequest(
        distro=distro.name, arch=arch_name, image_type=image_type.name, blueprint=bp,
        size=body.get("size", 0) or None, repositories=repos if len(repos) != len(system) else None,
        targets=targets, origin="weldr",
    )


@routes.post(V + "/compose")
async def compose_start(request: web.Request) -> web.Response:
    """Start a compose (``?test=1|2``: a fake failed/finished one). The compose service's errors
    (request refused, depsolve, manifest) are worded by the middleware."""
    c = ctx(request)
    body = await _start_body(request)
    targets = _targets(body.get("upload")) if api_version(request) >= 1 else []
    name = body.get("blueprint_name", "")
    check_name(name)
    bp = await bpstore.committed(c.blueprints, name)
    if bp is None:
        raise bad_request("UnknownBlueprint", f"Unknown blueprint name: {name}")
    req = await _request(c, bp, body, targets)
    svc = _service(request)
    test = request.query.get("test", "")
    if test in ("1", "2"):
        compose_id = await svc.create_fake(req, finished=(test == "2"))
    else:
        compose_id = await svc.start(req)
    _lists(request).changed()
    return json_response({"build_id": compose_id, "status": True, "warnings": []})


# --------------------------------------------------------------------------------------- listings


@routes.get(V + "/compose/types")
async def compose_types(request: web.Request) -> web.Response:
    distro, arch_name = distro_arch(request)
    arch = distro.arches.get(arch_name)
    names = sorted(arch.image_types) if arch is not None else []
    return json_response({"types": [{"name": n, "enabled": True} for n in names]})


class Listing:
    """One compose listing, shared by the requests that joined it: ``settled`` composes (FINISHED/
    FAILED, never changing; the same objects while ``version`` stays) and the ``live`` others, each
    in (created, id) order. A service without ``snapshot()`` gives everything as live (version -1)."""

    def __init__(self, version: int, settled: Sequence[WeldrCompose], live: Sequence[WeldrCompose],
                 composes: list[WeldrCompose] | None = None) -> None:
        self.version, self.settled, self.live = version, settled, live
        self._composes = composes

    @property
    def composes(self) -> list[WeldrCompose]:
        if self._composes is None:
            self._composes = sorted([*self.settled, *self.live], key=lambda x: (x.created, x.id))
        return self._composes


class SettledView:
    """The rendered entries of a listing's settled composes for one API version, sorted by id, all
    and per state: the bulk of every listing body, built once per settled set."""

    def __init__(self, settled: Sequence[WeldrCompose], v: int, text: Callable[[WeldrCompose, int], bytes]) -> None:
        by_id = sorted(settled, key=lambda x: x.id)
        self.ids = [x.id for x in by_id]
        self.texts = [text(x, v) for x in by_id]
        self.states: dict[str, tuple[list[str], list[bytes]]] = {"FINISHED": ([], []), "FAILED": ([], [])}
        for x, t in zip(by_id, self.texts, strict=True):
            ids, texts = self.states.setdefault(state(x), ([], []))
            ids.append(x.id)
            texts.append(t)


class EntryCache:
    """Rendered ComposeEntry JSON of FINISHED/FAILED composes, per API version.

    Such a compose never changes, and the compose service hands out the same object for it until
    it is deleted: an entry is reused only for that very object, so a compose the service read
    anew (or a deleted one whose id came back) is rendered again. WAITING/RUNNING ones always are.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int], tuple[WeldrCompose, bytes]] = {}
        self._views: dict[int, tuple[int, SettledView]] = {}
        # last body per (route, version, filter): (settled version, live entries, body)
        self._bodies: dict[tuple[str, int, str | None], tuple[int, list[bytes], bytes]] = {}

    def text(self, compose: WeldrCompose, v: int) -> bytes:
        if state(compose) not in ("FINISHED", "FAILED"):
            return _entry_text(compose, v)
        key = (compose.id, v)
        hit = self._entries.get(key)
        if hit is not None and hit[0] is compose:
            return hit[1]
        text = _entry_text(compose, v)
        self._entries[key] = (compose, text)
        return text

    def view(self, listing: Listing, v: int) -> SettledView:
        hit = self._views.get(v)
        if listing.version >= 0 and hit is not None and hit[0] == listing.version:
            return hit[1]
        view = SettledView(listing.settled, v, self.text)
        if listing.version >= 0:
            self._views[v] = (listing.version, view)
        return view

    def body(self, key: tuple[str, int, str | None], listing: Listing, live: list[bytes],
             build: Callable[[], bytes]) -> bytes:
        """The body ``build()`` makes, reused while the settled set and the live entries are the
        same: a poll then costs the rendering of the live composes only."""
        hit = self._bodies.get(key)
        if listing.version >= 0 and hit is not None and hit[0] == listing.version and hit[1] == live:
            return hit[2]
        out = build()
        if listing.version >= 0:
            self._bodies[key] = (listing.version, live, out)
        return out

    def clear(self) -> None:
        self._entries.clear()
        self._views.clear()
        self._bodies.clear()

    def prune(self, listing: Listing) -> None:
        """Drop deleted composes' entries once they make up half the cache (bounded memory)."""
        if len(self._entries) <= 2 * (len(listing.settled) + len(listing.live)) + 1000:
            return
        present = {id(c) for c in listing.settled} | {id(c) for c in listing.live}
        self._entries = {k: e for k, e in self._entries.items() if id(e[0]) in present}


def _entry_text(compose: WeldrCompose, v: int) -> bytes:
    return dumps(entry(compose, v))[:-1].encode()   # without the encoder's trailing newline


def _with_live(ids: list[str], texts: list[bytes], live: list[WeldrCompose],
               live_texts: list[bytes]) -> list[bytes]:
    """``texts`` (sorted by ``ids``) with the ``live_texts`` of ``live`` composes put in id order."""
    if not live:
        return texts
    ids, texts = list(ids), list(texts)
    for x, t in zip(live, live_texts, strict=True):
        i = bisect.bisect_left(ids, x.id)
        ids.insert(i, x.id)
        texts.insert(i, t)
    return texts


def _entries_body(parts: list[tuple[str, list[bytes]]]) -> bytes:
    """What ``json_response({name: [entry, ...], ...})`` sends, from entries already rendered."""
    return b"".join([b"{", b",".join(b'"' + name.encode() + b'":[' + b",".join(texts) + b"]"
                                     for name, texts in parts), b"}\n"])


def _bytes_response(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json", charset="utf-8")


def _entries_response(parts: list[tuple[str, list[bytes]]]) -> web.Response:
    return _bytes_response(_entries_body(parts))


def _settled_and_live(request: web.Request, listing: Listing, route: str, name: str, ids: list[str],
                      texts: list[bytes], live: list[WeldrCompose]) -> web.Response:
    """A body of one list: the settled entries (sorted by id) with the live ones merged in."""
    v = api_version(request)
    cache = _lists(request).entries
    live = sorted(live, key=lambda x: x.id)
    live_texts = [cache.text(x, v) for x in live]
    return _bytes_response(cache.body((route, v, request.query.get("status")), listing, live_texts,
                                      lambda: _entries_body([(name, _with_live(ids, texts, live, live_texts))])))


class ListCoalescer:
    """Concurrent listings share one ``ComposeService`` listing (cockpit and composer-cli poll it).

    A request only joins a call started after the last compose change made through this API, so a
    client always sees its own start/cancel/delete. The Weldr app owns one, opened and closed in its
    ``cleanup_ctx``.
    """

    def __init__(self) -> None:
        self.generation = 0
        self._inflight: tuple[int, asyncio.Future[Listing]] | None = None
        self.entries = EntryCache()
        self.info: dict[tuple[str, int], tuple[WeldrCompose, bytes]] = {}   # see compose_info
        self._kind: tuple[WeldrComposes, Snapshots | None] | None = None

    def _snapshots(self, service: WeldrComposes) -> Snapshots | None:
        """``service`` if it lists through snapshot(); decided once per service (an isinstance
        against a runtime Protocol costs ~10 µs, a good part of a cached poll)."""
        if self._kind is None or self._kind[0] is not service:
            self._kind = (service, service if isinstance(service, Snapshots) else None)
        return self._kind[1]

    def changed(self) -> None:
        self.generation += 1

    def close(self) -> None:
        """Drop the caches; a listing still in flight (none once the app has stopped serving) is
        cancelled rather than left for a request that will never come."""
        if self._inflight is not None and not self._inflight[1].done():
            self._inflight[1].cancel()
        self._inflight = None
        self._kind = None
        self.entries.clear()
        self.info.clear()

    async def list(self, service: WeldrComposes) -> list[WeldrCompose]:
        return (await self.listing(service)).composes

    async def listing(self, service: WeldrComposes) -> Listing:
        if self._inflight is not None and self._inflight[0] == self.generation:
            return await asyncio.shield(self._inflight[1])
        fut: asyncio.Future[Listing] = asyncio.get_running_loop().create_future()
        self._inflight = (self.generation, fut)
        try:
            snapshots = self._snapshots(service)
            if snapshots is not None:
                snap = await snapshots.snapshot()
                result = Listing(snap.version, snap.settled, snap.live)
            else:
                composes = list(await service.list())
                result = Listing(-1, [], composes, composes)
            self.entries.prune(result)
            fut.set_result(result)
            return result
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved here so a failure nobody joined is not reported as lost
            raise
        finally:
            if self._inflight is not None and self._inflight[1] is fut:
                self._inflight = None


LISTS = web.AppKey("weldr_compose_lists", ListCoalescer)


def _lists(request: web.Request) -> ListCoalescer:
    return request.app[LISTS]


async def _all(request: web.Request) -> Listing:
    return await _lists(request).listing(_service(request))


@routes.get(V + "/compose/queue")
async def compose_queue(request: web.Request) -> web.Response:
    v = api_version(request)
    listing = await _all(request)
    text = _lists(request).entries.text
    # settled composes are FINISHED/FAILED: the queue is in the live part, in listing order
    return _entries_response([
        ("new", [text(x, v) for x in listing.live if state(x) == "WAITING"]),
        ("run", [text(x, v) for x in listing.live if state(x) == "RUNNING"]),
    ])


async def _in_state(request: web.Request, name: str, wanted: str) -> web.Response:
    listing = await _all(request)
    ids, texts = _lists(request).entries.view(listing, api_version(request)).states.get(wanted, ([], []))
    return _settled_and_live(request, listing, name, name, ids, texts,
                             [x for x in listing.live if state(x) == wanted])


@routes.get(V + "/compose/finished")
async def compose_finished(request: web.Request) -> web.Response:
    return await _in_state(request, "finished", "FINISHED")


@routes.get(V + "/compose/failed")
async def compose_failed(request: web.Request) -> web.Response:
    return await _in_state(request, "failed", "FAILED")


@routes.get(V + "/compose/status/{uuids}")
async def compose_status(request: web.Request) -> web.Response:
    v = api_version(request)
    q = request.query
    bp_filter = q.get("blueprint")
    if bp_filter is not None:
        check_name(bp_filter)
    raw = request.match_info["uuids"]
    status_filter, type_filter = q.get("status"), q.get("type")
    if raw == "*" and bp_filter is None and type_filter is None:
        # the common poll: the settled part comes rendered and sorted
        listing = await _all(request)
        view = _lists(request).entries.view(listing, v)
        ids, texts = (view.ids, view.texts) if status_filter is None else \
            view.states.get(status_filter, ([], []))
        return _settled_and_live(request, listing, "status", "uuids", ids, texts,
                                 [x for x in listing.live if status_filter is None or state(x) == status_filter])
    if raw == "*":
        composes = sorted((await _all(request)).composes, key=lambda x: x.id)
        text = _lists(request).entries.text
    else:
        found_ = []
        for item in raw.split(","):
            cid = _parse_uuid(item)
            if cid is None:
                raise bad_request("UnknownUUID", f"{item} is not a valid build uuid")
            found = await _lookup(request, cid)
            if found is not None:
                found_.append(found)
        composes = sorted(found_, key=lambda x: x.id)
        # a service with stable settled objects: their entries are cached by identity (EntryCache)
        text = _lists(request).entries.text if _service(request).stable_settled \
            else _entry_text
    out = [text(x, v) for x in composes
           if (bp_filter is None or x.blueprint_name == bp_filter)
           and (status_filter is None or state(x) == status_filter)
           and (type_filter is None or x.image_type == type_filter)]
    return _entries_response([("uuids", out)])


INFO_CACHE = 512   # rendered compose/info bodies kept (a few KB each, up to ~100 KB with many packages)


@routes.get(V + "/compose/info/{uuid}")
async def compose_info(request: web.Request) -> web.Response:
    v = api_version(request)
    raw = request.match_info["uuid"]
    cid = _parse_uuid(raw)
    compose = await _lookup(request, cid) if cid else None
    if compose is None:
        raise bad_request("UnknownUUID", f"{raw} is not a valid build uuid")
    if state(compose) not in ("FINISHED", "FAILED") or not _service(request).stable_settled:
        return _bytes_response(_info_body(compose, v))
    # a settled compose is rendered once: its body is reused while the compose service hands out
    # the very same object for it (until delete or a change behind its back)
    cache = _lists(request).info
    key = (compose.id, v)
    hit = cache.pop(key, None)
    body = hit[1] if hit is not None and hit[0] is compose else _info_body(compose, v)
    cache[key] = (compose, body)   # most recently used last
    if len(cache) > INFO_CACHE:
        del cache[next(iter(cache))]
    return _bytes_response(body)


def _info_body(compose: WeldrCompose, v: int) -> bytes:
    req = compose.request or {}
    blueprint = req.get("blueprint") if isinstance(req, dict) else None
    if not isinstance(blueprint, dict):
        blueprint = {"name": compose.blueprint_name, "version": compose.blueprint_version}
    packages = sorted(compose.packages or [], key=lambda p: p.name)
    out: dict[str, Any] = {
        "id": compose.id, "config": "", "blueprint": blueprint, "commit": "",
        "deps": {"packages": [depsolved(p) for p in packages]}, "compose_type": compose.image_type,
        "queue_status": state(compose), "image_size": int(compose.size or 0),
    }
    if v >= 1:
        ups = uploads(compose)
        if ups:
            out["uploads"] = ups
    error = error_field(compose)
    if error is not None:
        out["error"] = error   # osbuildd extra: why it FAILED (clients ignore unknown keys)
    return dumps(out).encode()


# ------------------------------------------------------------------------------- cancel / delete


@routes.delete(V + "/compose/cancel/{uuid}")
async def compose_cancel(request: web.Request) -> web.Response:
    compose = await existing(request, request.match_info["uuid"])
    if state(compose) not in ("WAITING", "RUNNING"):
        raise not_cancellable(compose.id)
    try:
        # finished or deleted meanwhile: ComposeStateError / ComposeNotFound, worded by the middleware
        await _service(request).cancel(compose.id)
    finally:
        _lists(request).changed()
    return json_response({"uuid": compose.id, "status": True})


@routes.delete(V + "/compose/delete/{uuids}")
async def compose_delete(request: web.Request) -> web.Response:
    """Per compose: a bad one is an entry of the 200 answer's ``errors``, it must not hide the others."""
    done, errors = [], []
    for item in request.match_info["uuids"].split(","):
        cid = _parse_uuid(item)
        if cid is None:
            errors.append(error_entry("UnknownUUID", f"{item} is not a valid uuid"))
            continue
        compose = await _lookup(request, cid)
        if compose is None:
            errors.append(error_entry("UnknownUUID", f"compose {cid} doesn't exist"))
            continue
        if state(compose) not in ("FINISHED", "FAILED"):
            errors.append(not_deletable(cid).entry())
            continue
        try:
            await _service(request).delete(cid)
        except ComposeStateError:
            errors.append(not_deletable(cid).entry())
            continue
        except ComposeNotFound:
            errors.append(error_entry("UnknownUUID", f"compose {cid} doesn't exist"))
            continue
        finally:
            _lists(request).changed()
        done.append({"uuid": cid, "status": True})
    return json_response({"uuids": done, "errors": errors})
